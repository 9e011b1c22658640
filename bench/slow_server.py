# W14's slow server: answers every GET with 200 "late", but only after
# DELAY seconds, longer than the clients' timeout, so every request to it
# must end as a timeout (aiohttp's server: thousands of waits at once on
# one thread). Prints the port it listens on once it does.
#   /usr/bin/python3 bench/slow_server.py PORT DELAY
import asyncio
import sys

from aiohttp import web


async def late(request):
    await asyncio.sleep(DELAY)
    return web.Response(text="late\n")


async def main(port):
    app = web.Application()
    app.router.add_get("/{tail:.*}", late)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(port, flush=True)
    await asyncio.Event().wait()


DELAY = float(sys.argv[2])
asyncio.run(main(int(sys.argv[1])))
