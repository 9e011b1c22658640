# W1/W2 peer: aiohttp ClientSession with TCPConnector(limit=CONNS), TOTAL GETs
# from CONNS tasks, every body read and its length checked.
#   /usr/bin/python3 bench/w1_aiohttp.py URL [TOTAL] [CONNS] [BODY_LEN]
# Prints "requests=N seconds=S" (the load phase only).
import asyncio
import sys
import time

import aiohttp


async def main(url, total, conns, length):
    connector = aiohttp.TCPConnector(limit=conns, keepalive_timeout=300)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        async def loop(n):
            for _ in range(n):
                async with session.get(url) as resp:
                    got = 0
                    async for chunk in resp.content.iter_chunked(65536):
                        got += len(chunk)
                    if resp.status != 200 or got != length:
                        raise RuntimeError(f"status {resp.status}, {got} bytes")
            return n

        t0 = time.perf_counter()
        counts = [total // conns + (1 if t < total % conns else 0) for t in range(conns)]
        done = sum(await asyncio.gather(*(loop(n) for n in counts)))
        seconds = time.perf_counter() - t0
    if done != total:
        sys.exit(f"{done} of {total} done")
    print(f"requests={done} seconds={seconds:.4f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        sys.exit("usage: w1_aiohttp.py URL [TOTAL] [CONNS] [BODY_LEN]")
    asyncio.run(main(a[0], int(a[1]) if len(a) > 1 else 200000,
                     int(a[2]) if len(a) > 2 else 64, int(a[3]) if len(a) > 3 else 1024))
