-- Console pages (bench/paths/console.py): a signed-in officer's GET with the console cookie.
-- BENCH_PATH: the page; BENCH_COOKIE: the "name=value" of the signed session cookie.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
wrk.headers["Accept"] = "text/html"
