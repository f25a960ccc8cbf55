-- The wrk script of rig/measure.py:  wrk ... -s wrk.lua URL -- METHOD HEADER VALUES [BODY...]
-- Sends METHOD with the BODY files in turn (none: no body). HEADER ("" for none) names a
-- response header whose values are written to the file VALUES. done() prints one line,
-- BENCH_RESULT {json}: exact percentiles from wrk's own histogram and the error counts.
-- The request() and response() hooks are defined only when needed: with them wrk calls
-- into Lua for every request and runs slower.
local threads = {}
local header

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method, header, values = args[1], args[2], args[3] -- values: read by done()
  local bodies = {}
  for i = 4, #args do
    local f = assert(io.open(args[i], "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
  if #bodies > 0 then
    wrk.body = bodies[1]
    wrk.headers["Content-Type"] = "application/json"
  end
  if #bodies > 1 then
    local turn = 0
    request = function()
      turn = turn + 1
      return wrk.format(nil, nil, nil, bodies[turn % #bodies + 1])
    end
  end
  vals, nvals = {}, 0
  if header ~= "" then
    response = function(status, headers, body)
      local v = headers[header]
      if v ~= nil and nvals < 2000000 then nvals = nvals + 1; vals[nvals] = v end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(90.0),
    latency:percentile(99.0), e.connect, e.read, e.write, e.status, e.timeout))
  local out = assert(io.open(threads[1]:get("values"), "w"))
  for _, t in ipairs(threads) do
    local v = t:get("vals")
    for i = 1, #v do out:write(v[i], "\n") end
  end
  out:close()
end
