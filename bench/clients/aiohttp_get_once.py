# aiohttp: one GET of BENCH_URL, its status and body length (BENCH_BYTES)
# checked; aiohttp_start.sh times this whole process.
import asyncio
import os
import sys

import aiohttp


async def main(url, length):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            body = await resp.read()
            if resp.status != 200 or len(body) != length:
                sys.exit(f"status {resp.status}, {len(body)} bytes")


asyncio.run(main(os.environ["BENCH_URL"], int(os.environ["BENCH_BYTES"])))
