-- Path 3: one-tap urgent help from DISTINCT residents with distinct Idempotency-Keys.
-- BENCH_DATA: one "token township_code" line per resident, never reused: thread t of n takes
-- lines t+1, t+1+n, t+1+2n, ... so no two requests of the run share a resident or a key.
-- When a thread runs out of residents it stops sending (counted as "exhausted").
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local rows = {}
local pos = 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local run_id = os.getenv("BENCH_RUN_ID") or "run"
-- The stack ceiling (bench/stack_app.py) sends the same taps to its bench-only route.
local path = os.getenv("BENCH_URGENT_PATH") or "/api/v1/urgent-requests"
exhausted = 0

function init(args)
  local n = 0
  for line in io.lines(os.getenv("BENCH_DATA")) do
    if n % nthreads == (thread_id or 0) then
      local token, township = line:match("^(%S+)%s+(%S+)$")
      if token then table.insert(rows, {token, township}) end
    end
    n = n + 1
  end
end

function request()
  pos = pos + 1
  local r = rows[pos]
  if r == nil then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  local body = string.format(
    '{"township_code": "%s", "location": {"lat": 35.42, "lng": 119.52}, ' ..
    '"address": "日照市东港区", "description": "家中老人突发疾病，急需帮助"}', r[2])
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. r[1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d-%d", run_id, thread_id or 0, pos),
  }, body)
end
