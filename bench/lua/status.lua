-- Path 2: a resident reads their own case (GET /api/v1/cases/{id}) with a bearer token.
-- BENCH_DATA: one "token case_id" line per resident; each thread cycles through all of them,
-- starting at its own offset.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local pairs_ = {}
local i = 0
-- The stack ceiling (bench/paths/stack.py) sends the same reads to its own route.
local prefix = os.getenv("BENCH_STATUS_PATH") or "/api/v1/cases/"

function init(args)
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local token, case_id = line:match("^(%S+)%s+(%S+)$")
    if token then
      table.insert(pairs_, {prefix .. case_id, "Bearer " .. token})
    end
  end
  i = (thread_id or 0) * 997
end

function request()
  i = i + 1
  local p = pairs_[(i % #pairs_) + 1]
  return wrk.format("GET", p[1], {["Authorization"] = p[2], ["Accept"] = "application/json"})
end
