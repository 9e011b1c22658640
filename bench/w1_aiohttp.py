# W1/W2/W5/W6/W7 peer: aiohttp ClientSession with TCPConnector(limit=CONNS),
# TOTAL GETs from CONNS tasks, every body read and its length checked. With
# CAFILE (W5, an https URL) the server is verified against that CA. With
# close (W6, W7) every GET is on a new connection (TCPConnector(force_close=True)).
#   /usr/bin/python3 bench/w1_aiohttp.py URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close]]
# Prints "requests=N seconds=S bytes=B" (the load phase only). W9 calls main()
# from bench/w8_aiohttp.py with decompress: the bodies are then decoded
# (auto_decompress) and BODY_LEN is the decoded length.
import asyncio
import ssl
import sys
import time

import aiohttp

USAGE = "usage: w1_aiohttp.py URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close]]"


def connector(conns, cafile, close):
    """A pool of CONNS keep-alive connections, or with close one per request."""
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    reuse = {"force_close": True} if close else {"keepalive_timeout": 300}
    return aiohttp.TCPConnector(limit=conns, ssl=tls, **reuse)


async def main(url, total, conns, length, cafile=None, close=False, decompress=False, chunk_size=65536):
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector(conns, cafile, close), timeout=timeout,
                                     auto_decompress=decompress) as session:
        async def loop(n):
            for _ in range(n):
                async with session.get(url) as resp:
                    got = 0
                    async for chunk in resp.content.iter_chunked(chunk_size):
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
    print(f"requests={done} seconds={seconds:.4f} bytes={done * length}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a or len(a) > 6 or (len(a) == 6 and a[5] != "close"):
        sys.exit(USAGE)
    asyncio.run(main(a[0], int(a[1]) if len(a) > 1 else 200000,
                     int(a[2]) if len(a) > 2 else 64, int(a[3]) if len(a) > 3 else 1024,
                     a[4] if len(a) > 4 else None, len(a) > 5))
