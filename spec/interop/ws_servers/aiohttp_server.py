"""WebSocket echo server on aiohttp, a peer of spec/interop_websocket_test.sh.

Run with the system Python (Debian's python3-aiohttp):
    /usr/bin/python3 aiohttp_server.py PORT [--cert PEM --key PEM] [--no-deflate]
Listens on 127.0.0.1:PORT (wss:// with --cert and --key), prints "ready" once
it accepts, and serves until killed. Paths:
    /echo          every message back, text as text and binary as binary
    /close/CODE    a close frame with CODE and the reason "bye CODE"
    /ping          a ping "p", then "pong:p" when the next frame is a pong with
                   that payload (autoping off, so pongs reach the handler) or
                   "no pong", then /echo
    /subproto      "protocol:NAME" (the subprotocol agreed, "chat" when offered),
                   then /echo
There is no /frag: aiohttp sends every message in one frame.
"""
import asyncio
import os
import sys

from aiohttp import WSMsgType, web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_args import parse_args, tls_context  # noqa: E402

MAX = 8 * 1024 * 1024


async def echo(ws):
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)


def routes(compress):
    async def opened(request, **kw):
        ws = web.WebSocketResponse(compress=compress, max_msg_size=MAX, **kw)
        await ws.prepare(request)
        return ws

    async def echo_route(request):
        ws = await opened(request)
        await echo(ws)
        return ws

    async def close_route(request):
        ws = await opened(request)
        code = int(request.match_info["code"])
        await ws.close(code=code, message=b"bye %d" % code)
        return ws

    async def ping_route(request):
        ws = await opened(request, autoping=False)
        await ws.ping(b"p")
        msg = await ws.receive(timeout=5)
        if msg.type == WSMsgType.PONG and msg.data == b"p":
            await ws.send_str("pong:p")
        else:
            await ws.send_str("no pong: %s" % msg.type.name)
        async for msg in ws:
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def subproto_route(request):
        ws = await opened(request, protocols=("chat",))
        await ws.send_str("protocol:%s" % ws.ws_protocol)
        await echo(ws)
        return ws

    return [
        web.get("/echo", echo_route),
        web.get("/close/{code:\\d+}", close_route),
        web.get("/ping", ping_route),
        web.get("/subproto", subproto_route),
    ]


async def main(args):
    context = tls_context(args)
    app = web.Application()
    app.add_routes(routes(not args.no_deflate))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=context).start()
    print("ready", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
