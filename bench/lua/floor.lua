-- Path 1, the floor: GET /healthz on the same server.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/healthz"
