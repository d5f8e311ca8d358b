-- POST /zones/ZONE/oauth/token with grant_type=refresh_token. Each thread takes
-- its own share of the refresh tokens and rotates them: a request takes the oldest
-- token of the thread's queue, and the rotated token it answers with joins the
-- queue's end, so no token is ever presented twice.
-- Arguments: TOKEN_FILE ZONE CLIENT_ID THREADS.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua"
local common = require("common")

local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local queue, head, tail, path, client

function init(args)
  local _, refresh = common.read_tokens(args[1])
  local threads = tonumber(args[4])
  queue, head, tail = {}, 1, 0
  for i = id + 1, #refresh, threads do
    tail = tail + 1
    queue[tail] = refresh[i]
  end
  path = "/zones/" .. args[2] .. "/oauth/token"
  client = args[3]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  if head > tail then
    io.stderr:write("the refresh queue ran dry: more connections than tokens\n")
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", path, nil,
    "grant_type=refresh_token&client_id=" .. client .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if status ~= 200 or not token then
    io.stderr:write("refresh answered " .. status .. ": " .. body:sub(1, 120) .. "\n")
    wrk.thread:stop()
    return
  end
  tail = tail + 1
  queue[tail] = token
end

done = common.report
