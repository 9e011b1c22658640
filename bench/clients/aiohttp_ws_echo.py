# aiohttp: BENCH_REQUESTS WebSocket messages echoed by the server at
# BENCH_URL, over BENCH_CONNS connections of one ClientSession (ws_connect,
# compress=0: no permessage-deflate), BENCH_WINDOW messages in flight on
# each: it sends that many, then one more for each echo it receives. Every
# message is BENCH_FILE's bytes, as text or binary (BENCH_MESSAGE), and every
# echo must be of that type and equal to it. Prints requests (messages),
# seconds (the echo phase only, connecting included) and the VmRSS after the
# first tenth of the messages and at the end (rss_warm, rss_end, bytes).
import asyncio
import json
import os
import time

import aiohttp


def vmrss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def main():
    env = os.environ
    url, total, conns = env["BENCH_URL"], int(env["BENCH_REQUESTS"]), int(env["BENCH_CONNS"])
    window = int(env.get("BENCH_WINDOW", "1"))
    binary = env.get("BENCH_MESSAGE") == "binary"
    with open(env["BENCH_FILE"], "rb") as f:
        payload = f.read()
    if not binary:
        payload = payload.decode()
    want = aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT
    state = {"received": 0, "rss_warm": None}
    warm_at = max(1, total // 10)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        async def echo(t, n):
            async with session.ws_connect(url, compress=0, max_msg_size=0) as ws:
                send = ws.send_bytes if binary else ws.send_str
                sent = 0
                while sent < min(window, n):
                    await send(payload)
                    sent += 1
                for i in range(n):
                    msg = await ws.receive()
                    if msg.type != want or msg.data != payload:
                        raise RuntimeError(f"task {t} message {i}: {msg.type}")
                    state["received"] += 1
                    if state["received"] == warm_at:
                        state["rss_warm"] = vmrss()
                    if sent < n:
                        await send(payload)
                        sent += 1

        t0 = time.perf_counter()
        counts = [total // conns + (1 if t < total % conns else 0) for t in range(conns)]
        await asyncio.gather(*(echo(t, n) for t, n in enumerate(counts)))
        seconds = time.perf_counter() - t0
    if state["received"] != total:
        raise RuntimeError(f"{state['received']} of {total} messages echoed")
    print(json.dumps({"requests": total, "seconds": seconds, "rss_warm": state["rss_warm"], "rss_end": vmrss()}))


if __name__ == "__main__":
    asyncio.run(main())
