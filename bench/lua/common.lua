-- Shared by every wrk script: per-thread status-code counts and a JSON summary line.
-- wrk runs one Lua state per thread plus one for setup/done; values cross them only through
-- thread:set/get, so the counters live in each thread and done() collects them.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

codes = {}

function count_status(status)
  local k = tostring(status)
  codes[k] = (codes[k] or 0) + 1
end

function response(status, headers, body)
  count_status(status)
end

local function json_codes(all)
  local parts = {}
  for k, v in pairs(all) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local all = {}
  local exhausted = 0
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c then
      for k, v in pairs(c) do all[k] = (all[k] or 0) + v end
    end
    exhausted = exhausted + (t:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d}, "codes": %s, "exhausted": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    json_codes(all), exhausted))
end
