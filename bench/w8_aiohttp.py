# W8 and W9 peer, one aiohttp request:
#   upload URL FILE   W8: POST the file (data=open(FILE, "rb"), which aiohttp
#                     streams with Content-Length) to bench/upload_server.py;
#                     its answer "received=N" must be the file's size
#   gunzip URL SIZE   W9: GET a gzip-encoded body through bench/w1_aiohttp.py,
#                     decoded (auto_decompress) and read with
#                     iter_chunked(262144); the decoded bytes must be SIZE
#   /usr/bin/python3 bench/w8_aiohttp.py upload|gunzip URL FILE|SIZE
# Prints "requests=1 seconds=S bytes=B" (the request only).
import asyncio
import os
import sys
import time

import aiohttp

import w1_aiohttp

USAGE = "usage: w8_aiohttp.py upload URL FILE | gunzip URL SIZE"


async def upload(url, path):
    size = os.path.getsize(path)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            async with session.post(url, data=f) as resp:
                text = await resp.text()
        seconds = time.perf_counter() - t0
    if resp.status != 200 or text.strip() != f"received={size}":
        raise RuntimeError(f"status {resp.status}, server says {text!r} of {size} bytes")
    print(f"requests=1 seconds={seconds:.4f} bytes={size}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 3 or a[0] not in ("upload", "gunzip"):
        sys.exit(USAGE)
    if a[0] == "upload":
        asyncio.run(upload(a[1], a[2]))
    else:
        asyncio.run(w1_aiohttp.main(a[1], 1, 1, int(a[2]), decompress=True, chunk_size=262144))
