-- POST /zones/ZONE/oauth/introspect with a random live access token per request.
-- Arguments: TOKEN_FILE ZONE; the admin token comes from TENURE_ADMIN_TOKEN.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua"
local common = require("common")

local tokens, path

function init(args)
  tokens = common.read_tokens(args[1])
  path = "/zones/" .. args[2] .. "/oauth/introspect"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TENURE_ADMIN_TOKEN")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  return wrk.format("POST", path, nil, "token=" .. tokens[math.random(#tokens)])
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"active":true', 1, true) then
    io.stderr:write("introspection answered " .. status .. ": " .. body:sub(1, 120) .. "\n")
    wrk.thread:stop()
  end
end

done = common.report
