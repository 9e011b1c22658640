# aiohttp: one GET of a gzip-encoded body, decoded (auto_decompress) and read
# with iter_chunked(262144); the decoded bytes must come to BENCH_BYTES.
# Prints requests, seconds (the request only) and bytes (decoded).
import asyncio

import aiohttp_get_load

p = aiohttp_get_load.params()
asyncio.run(aiohttp_get_load.load(p["url"], 1, 1, p["length"], decompress=True, chunk_size=262144))
