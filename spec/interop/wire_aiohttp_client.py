"""aiohttp's side of spec/interop_aiohttp_wire_test.sh: the cases of
spec/interop/wire_cases.txt sent with Debian's aiohttp to the raw echo
server (spec/interop/wire_echo_server.py), what reached it saved as
    OUT/<case>.<n>.req   the exact bytes of request n
    OUT/<case>.conns     the connection of each request, numbered from 1
    OUT/<case>.error     instead, when the request failed
Run with the system Python: /usr/bin/python3 wire_aiohttp_client.py BASE OUT
"""
import asyncio
import os
import sys

import aiohttp
from aiohttp import HttpVersion10

BASE, OUT = sys.argv[1], sys.argv[2]


async def gen():
    for part in (b"one ", b"two ", b"three"):
        yield part


# case -> (session options, [(method, path, request options)]); aiohttp
# takes version= on the session only (lurl on a request too).
def cases():
    v10 = {"version": HttpVersion10}
    ka = {"headers": {"Connection": "keep-alive"}}
    return {
        "get10": (v10, [("GET", "/echo?a=1", {})]),
        "get10_close": (v10, [("GET", "/close10", {}), ("GET", "/close10", {})]),
        "get10_open11": (v10, [("GET", "/open11", {}), ("GET", "/open11", {})]),
        "get10_keepalive": (v10, [("GET", "/echo", ka), ("GET", "/echo", ka)]),
        "post10_bytes": (v10, [("POST", "/echo", {"data": b"hello"})]),
        "post10_generator": (v10, [("POST", "/echo", {"data": gen()})]),
        "post_bytes": ({}, [("POST", "/echo", {"data": b"hello\x00\xff"})]),
        "get_bytes": ({}, [("GET", "/echo", {"data": b"x"})]),
        "put_generator": ({}, [("PUT", "/echo", {"data": gen()})]),
        "post_typed": ({}, [("POST", "/echo", {"data": b"{}", "headers": {"Content-Type": "application/json"}})]),
        "post_skip_type": ({"skip_auto_headers": ["Content-Type"]}, [("POST", "/echo", {"data": b"x"})]),
        "post_compress": ({}, [("POST", "/echo", {"data": b"deflate me " * 100, "compress": True})]),
        "post_empty": ({}, [("POST", "/echo", {})]),
        "redirect_requote": ({}, [("GET", "/redirect", {})]),
        "redirect_raw": ({"requote_redirect_url": False}, [("GET", "/redirect", {})]),
        "redirect_raw_abs": ({"requote_redirect_url": False}, [("GET", "/redirect-abs", {})]),
    }


async def run(name, session_opts, requests):
    conns, n = {}, 0
    try:
        async with aiohttp.ClientSession(BASE, **session_opts) as s:
            for method, path, opts in requests:
                async with s.request(method, path, **opts) as r:
                    body = await r.read()
                    n += 1
                    with open(os.path.join(OUT, "%s.%d.req" % (name, n)), "wb") as f:
                        f.write(body)
                    conns.setdefault(r.headers["X-Conn"], len(conns) + 1)
                    with open(os.path.join(OUT, name + ".conns"), "a") as f:
                        f.write("%d\n" % conns[r.headers["X-Conn"]])
    except Exception as e:  # noqa: BLE001 - recorded for the comparison
        with open(os.path.join(OUT, name + ".error"), "w") as f:
            f.write("%s: %s\n" % (type(e).__name__, e))


async def main():
    for name, (session_opts, requests) in cases().items():
        await run(name, session_opts, requests)
    # informational: aiohttp's type for a str body (Lua strings are bytes)
    async with aiohttp.ClientSession(BASE) as s:
        async with s.post("/echo", data="text") as r:
            with open(os.path.join(OUT, "info.str_body"), "wb") as f:
                f.write(await r.read())


asyncio.run(main())
