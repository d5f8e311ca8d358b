-- Shared by the load scripts: reads the token file, and prints the figures of a
-- run on one line for http-load.sh to collect.

local M = {}

-- The token pairs written by grants.py: { access = {...}, refresh = {...} }.
function M.read_tokens(path)
  local access, refresh = {}, {}
  for line in io.lines(path) do
    local a, r = line:match("^(%S+) (%S+)$")
    if a then
      access[#access + 1] = a
      refresh[#refresh + 1] = r
    end
  end
  return access, refresh
end

-- One line: requests per second, p50, p99, p99.9 and max latency in ms, errors.
function M.report(summary, latency)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT %.0f %.2f %.2f %.2f %.2f %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000,
    latency.max / 1000,
    errors,
    summary.requests
  ))
end

return M
