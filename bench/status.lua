-- Counts the responses of a wrk run by status class and prints, at the
-- end, one line the bench scripts read:
--   STATUS requests=N rps=R 2xx=N 3xx=N 4xx=N 5xx=N other=N 401=N errors=N
-- errors are socket errors and timeouts (no status at all).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = { 0, 0, 0, 0, 0, 0, 0 } -- 1xx..5xx, other, 401
end

function response(status, headers, body)
  local class = math.floor(status / 100)
  if class < 1 or class > 5 then class = 6 end
  counts[class] = counts[class] + 1
  if status == 401 then counts[7] = counts[7] + 1 end
end

function done(summary, latency, requests)
  local c = { 0, 0, 0, 0, 0, 0, 0 }
  for _, t in ipairs(threads) do
    local tc = t:get("counts")
    for k = 1, 7 do c[k] = c[k] + tc[k] end
  end
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format("STATUS requests=%d rps=%.1f 2xx=%d 3xx=%d 4xx=%d 5xx=%d other=%d 401=%d errors=%d\n",
    summary.requests, summary.requests / seconds, c[2], c[3], c[4], c[5], c[1] + c[6], c[7], errors))
end
