-- wrk script of the flag benchmark's OFREP load phase (see bench/flags/src/ofrep_load.rs).
--
-- Usage: wrk ... -s ofrep.lua http://HOST:PORT -- REQUESTS_FILE
-- Each line of REQUESTS_FILE is "<flag key><TAB><JSON body>". Every thread pre-builds one
-- POST /ofrep/v1/evaluate/flags/{key} per line and sends them in turn, starting at its own
-- offset so threads do not move in step. done() prints one JSON line with the figures.

local requests = {}
local next_index = 0

function setup(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("thread_number", thread_count)
end

function init(args)
  local path = args[1]
  if path == nil then
    error("ofrep.lua: the requests file is missing (wrk ... -s ofrep.lua URL -- FILE)")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    local key, body = line:match("^([^\t]+)\t(.*)$")
    if key ~= nil then
      requests[#requests + 1] = wrk.format("POST", "/ofrep/v1/evaluate/flags/" .. key, headers, body)
    end
  end
  if #requests == 0 then
    error("ofrep.lua: no requests in " .. path)
  end
  next_index = ((thread_number or 1) - 1) * 997 % #requests
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"latency_p50_us":%d,"latency_p99_us":%d,' ..
    '"latency_max_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    latency.max, errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
