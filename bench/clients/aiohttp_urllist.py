# aiohttp: W14's URL list (BENCH_FILE) the way its users write it: a task
# per URL behind an asyncio.Semaphore(BENCH_CONNS), one ClientSession whose
# TCPConnector allows as many connections (limit=BENCH_CONNS: with the
# default 100, requests would wait for a connection inside their timeout),
# ClientTimeout(total=BENCH_TIMEOUT) per request, every body read. DNS by
# aiohttp's default, ThreadedResolver (getaddrinfo in the loop's executor);
# aiodns_urllist.py runs the same with aiodns. One outcome line per URL to
# BENCH_OUTCOMES. Prints requests and seconds (from the list read to the last
# outcome).
import asyncio
import errno
import json
import os
import time

import aiohttp


def outcome(exc):
    """A failed request's outcome word (bench/urllist.py)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno == errno.ECONNREFUSED:
        return "refused"
    return "error:" + type(exc).__name__


async def check(resolver=None):
    env = os.environ
    conns, timeout = int(env["BENCH_CONNS"]), aiohttp.ClientTimeout(total=float(env["BENCH_TIMEOUT"]))
    t0 = time.perf_counter()
    with open(env["BENCH_FILE"]) as f:
        urls = [line.strip() for line in f if line.strip()]
    sem = asyncio.Semaphore(conns)
    connector = aiohttp.TCPConnector(limit=conns, resolver=resolver)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(url):
            async with sem:
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        return f"{url} {resp.status}\n"
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    return f"{url} {outcome(e)}\n"

        lines = await asyncio.gather(*(one(u) for u in urls))
    seconds = time.perf_counter() - t0
    with open(env["BENCH_OUTCOMES"], "w") as out:
        out.writelines(lines)
    print(json.dumps({"requests": len(urls), "seconds": seconds}))


if __name__ == "__main__":
    asyncio.run(check())
