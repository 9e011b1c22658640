"""aiohttp server for spec/interop_aiohttp_test.sh.

Run with the system Python (Debian's python3-aiohttp):
    /usr/bin/python3 spec/interop/aiohttp_server.py
Binds 127.0.0.1 port 0, prints the port it got on the first line of stdout,
and serves until killed.
"""
import asyncio
import sys

from aiohttp import web


def peer(request):
    # the client's address: the same port on two requests means one connection
    info = request.transport.get_extra_info("peername") if request.transport else None
    return {"port": info[1] if info else None}


async def hello(request):
    return web.Response(text="hello from aiohttp\n")


async def echo(request):
    body = await request.read()
    ctype = request.headers.get("Content-Type", "")
    return web.Response(body=body, headers={
        "X-Got-Content-Type": ctype,
        "X-Got-Content-Length": request.headers.get("Content-Length", ""),
        "X-Got-Method": request.method,
        "Content-Type": "application/octet-stream",
    })


async def echo_json(request):
    try:
        value = await request.json()
    except ValueError as e:
        return web.json_response({"error": str(e)}, status=400)
    return web.json_response({"got": value, "content_type": request.content_type})


async def form(request):
    data = await request.post()
    return web.json_response({k: data.getall(k) for k in data.keys()})


async def chunked(request):
    # 20 chunks of different sizes, written with pauses so they arrive apart
    n = int(request.query.get("n", "20"))
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(n):
        await resp.write(("chunk %d:" % i).encode() + bytes([65 + i % 26]) * (i * 997 % 5000) + b"\n")
        await asyncio.sleep(0.005)
    await resp.write_eof()
    return resp


async def headers(request):
    return web.json_response({
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
        "method": request.method,
        "path_qs": request.path_qs,
        "version": "%d.%d" % (request.version.major, request.version.minor),
        "peer": peer(request),
    })


async def slow(request):
    await asyncio.sleep(1)
    return web.Response(text="finally\n")


async def status(request):
    code = int(request.match_info["code"])
    return web.Response(status=code, text="status %d\n" % code)


async def big(request):
    n = int(request.query.get("n", "1048576"))
    return web.Response(body=bytes(i * 7 % 251 for i in range(n)),
                        content_type="application/octet-stream")


async def close(request):
    # answer with Connection: close, then close the connection
    resp = web.Response(text="bye\n")
    resp.force_close()
    return resp


async def big_header(request):
    n = int(request.query.get("n", "1000"))
    return web.Response(text="ok\n", headers={"X-Big": "b" * n})


async def main():
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_put("/echo", echo)
    app.router.add_post("/json", echo_json)
    app.router.add_post("/form", form)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/headers", headers)
    app.router.add_get("/slow", slow)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/big", big)
    app.router.add_get("/close", close)
    app.router.add_get("/big_header", big_header)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
