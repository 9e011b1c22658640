# W3 peer: start, one GET with aiohttp, check it, exit.
#   /usr/bin/python3 bench/w3_aiohttp.py URL [BODY_LEN]
import asyncio
import sys

import aiohttp


async def main(url, length):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            body = await resp.read()
            if resp.status != 200 or len(body) != length:
                sys.exit(f"status {resp.status}, {len(body)} bytes")


asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1024))
