-- lurl: one GET of a gzip-encoded body, decoded by the session
-- (auto_decompress, the default) and streamed with iter_chunked(262144); the
-- decoded bytes must come to BENCH_BYTES. Prints requests, seconds (the
-- request only) and bytes (decoded).
local lib = dofile((arg[0]:match("^(.*/)") or "") .. "../lib.lua")

lib.stream_load(lib.params(), 262144)
