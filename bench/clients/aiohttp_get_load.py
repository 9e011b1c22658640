# aiohttp: a ClientSession with TCPConnector(limit=BENCH_CONNS) makes
# BENCH_REQUESTS GETs of BENCH_URL from BENCH_CONNS tasks, every body read
# (iter_chunked) and its length (BENCH_BYTES) checked. With BENCH_CAFILE (an
# https URL) the server is verified against that CA; with BENCH_PROXY every
# GET goes through that proxy (proxy= on each request: a session-wide proxy
# needs aiohttp 3.10, Debian 12 has 3.8). Prints requests, seconds
# (the load phase only) and bytes. aiohttp_handshakes.py and
# aiohttp_gunzip.py run load() in their own way.
import asyncio
import json
import os
import ssl
import time

import aiohttp


def params():
    """The workload as scripts/bench hands it to an adapter (bench/README.md, "Adapters")."""
    env = os.environ
    return {"url": env["BENCH_URL"], "total": int(env.get("BENCH_REQUESTS", "1")),
            "conns": int(env.get("BENCH_CONNS", "1")), "length": int(env["BENCH_BYTES"]),
            "cafile": env.get("BENCH_CAFILE"), "proxy": env.get("BENCH_PROXY")}


def connector(conns, cafile, close):
    """A pool of CONNS keep-alive connections, or with close one per request."""
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    reuse = {"force_close": True} if close else {"keepalive_timeout": 300}
    return aiohttp.TCPConnector(limit=conns, ssl=tls, **reuse)


async def load(url, total, conns, length, cafile=None, proxy=None, close=False, decompress=False,
               chunk_size=65536):
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector(conns, cafile, close), timeout=timeout,
                                     auto_decompress=decompress) as session:
        async def loop(n):
            for _ in range(n):
                async with session.get(url, proxy=proxy) as resp:
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
        raise RuntimeError(f"{done} of {total} done")
    print(json.dumps({"requests": done, "seconds": seconds, "bytes": done * length}))


if __name__ == "__main__":
    asyncio.run(load(**params()))
