# aiohttp: one POST of BENCH_FILE (data=open(file, "rb"), which aiohttp
# streams with Content-Length) to bench/upload_server.py, whose answer
# "received=N" must be the file's size. Prints requests, seconds (the request
# only) and bytes.
import asyncio
import json
import os
import time

import aiohttp


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
    print(json.dumps({"requests": 1, "seconds": seconds, "bytes": size}))


asyncio.run(upload(os.environ["BENCH_URL"], os.environ["BENCH_FILE"]))
