-- lurl: BENCH_REQUESTS GETs of a large file (BENCH_BYTES each) over
-- BENCH_CONNS keep-alive connections, each body streamed with
-- iter_chunked(65536) and dropped, every byte counted. Prints requests,
-- seconds (the load phase only) and bytes.
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

lib.stream_load(lib.params(), 65536)
