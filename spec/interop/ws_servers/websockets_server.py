"""WebSocket echo server on python3-websockets, a peer of spec/interop_websocket_test.sh.

Run with the system Python (Debian's python3-websockets):
    /usr/bin/python3 websockets_server.py PORT [--cert PEM --key PEM] [--no-deflate]
Listens on 127.0.0.1:PORT (wss:// with --cert and --key), prints "ready" once
it accepts, and serves until killed. Paths:
    /echo          every message back, text as text and binary as binary
    /close/CODE    a close frame with CODE and the reason "bye CODE"
    /ping          a ping "p", then "pong:p" once the client's pong came back
                   (websockets matches it by payload) or "no pong", then /echo
    /frag          "one-two-three" as one text message in 3 frames, then /echo
    /subproto      "protocol:NAME" (the subprotocol agreed, "chat" when offered),
                   then /echo
"""
import asyncio
import os
import sys
import http

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_args import parse_args, tls_context  # noqa: E402

PATHS = ("/echo", "/ping", "/frag", "/subproto")


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def ping(ws):
    pong = await ws.ping(b"p")
    try:
        await asyncio.wait_for(pong, 5)
        await ws.send("pong:p")
    except asyncio.TimeoutError:
        await ws.send("no pong")
    await echo(ws)


async def handler(ws):
    path = ws.path
    if path.startswith("/close/"):
        code = int(path[len("/close/"):])
        await ws.close(code, "bye %d" % code)
    elif path == "/ping":
        await ping(ws)
    elif path == "/frag":
        # an iterable is sent as one message, one frame per item (RFC 6455 5.4)
        await ws.send(["one-", "two-", "three"])
        await echo(ws)
    elif path == "/subproto":
        await ws.send("protocol:%s" % ws.subprotocol)
        await echo(ws)
    else:
        await echo(ws)


async def process_request(path, _headers):
    if path in PATHS or path.startswith("/close/"):
        return None
    return http.HTTPStatus.NOT_FOUND, [], b"no such path\n"


async def main(args):
    context = tls_context(args)
    async with websockets.serve(
        handler, "127.0.0.1", args.port, ssl=context, process_request=process_request,
        compression=None if args.no_deflate else "deflate", subprotocols=["chat"],
        max_size=8 * 1024 * 1024,
    ):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
