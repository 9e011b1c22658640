"""The reference client for spec/interop/ws_fuzzingserver.py: Python's
websockets library (Debian's python3-websockets) runs the same cases as
spec/interop/ws_fuzzing_client.lua, so that the server's judgements are
checked against a strict, independent client. Run by
spec/ws_conformance_test.sh with the system Python:

    /usr/bin/python3 spec/interop/ws_fuzzing_reference.py ws://127.0.0.1:PORT [agent]

Echoes every message back with its type until the connection closes;
sections 12 and 13 connect with permessage-deflate, the others without.
"""
import asyncio
import json
import sys

import websockets


async def one_message(url):
    async with websockets.connect(url) as ws:
        return await ws.recv()


async def run_case(base, i, agent):
    info = json.loads(await one_message("%s/getCaseInfo?case=%d" % (base, i)))
    compression = "deflate" if info["id"].split(".")[0] in ("12", "13") else None
    url = "%s/runCase?case=%d&agent=%s" % (base, i, agent)
    try:
        async with websockets.connect(url, compression=compression, max_size=None, ping_interval=None,
                                      close_timeout=5) as ws:
            async for msg in ws:
                await ws.send(msg)
    except Exception as e:     # the server judges; a client error is part of the case
        print("case %s: %s: %s" % (info["id"], type(e).__name__, e), file=sys.stderr)


async def main(base, agent):
    count = int(await one_message(base + "/getCaseCount"))
    for i in range(1, count + 1):
        await run_case(base, i, agent)
    async with websockets.connect("%s/updateReports?agent=%s" % (base, agent)) as ws:
        await ws.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "websockets"))
