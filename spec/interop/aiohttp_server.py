"""aiohttp server for spec/interop_aiohttp_test.sh.

Run with the system Python (Debian's python3-aiohttp):
    /usr/bin/python3 spec/interop/aiohttp_server.py
Binds 127.0.0.1 port 0, prints the port it got on the first line of stdout,
and serves until killed.
"""
import asyncio
import hashlib
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


# ---- request bodies: what aiohttp's parsers made of them ----

SMALL = 65536  # bodies and parts up to this size come back whole, in hex


def hexs(s):
    # a str the parser made from header bytes, back to those bytes
    return None if s is None else s.encode("utf-8", "surrogateescape").hex()


def framing(request):
    return {
        "method": request.method,
        "path_qs": request.path_qs,
        "content_type": request.headers.get("Content-Type"),
        "content_length": request.headers.get("Content-Length"),
        "transfer_encoding": request.headers.get("Transfer-Encoding"),
        "chunked": request.headers.get("Transfer-Encoding", "").lower() == "chunked",
        "peer": peer(request),
    }


async def upload(request):
    # the body as request.read() gives it: length, sha256, and the bytes when small
    body = await request.read()
    doc = framing(request)
    doc.update(length=len(body), sha256=hashlib.sha256(body).hexdigest(),
               body_hex=body.hex() if len(body) <= SMALL else None)
    return web.json_response(doc)


async def parts(request):
    # multipart/form-data read part by part with request.multipart()
    reader = await request.multipart()
    out = []
    while True:
        part = await reader.next()
        if part is None:
            break
        h, size, head = hashlib.sha256(), 0, bytearray()
        while True:
            chunk = await part.read_chunk(65536)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
            if len(head) <= SMALL:
                head.extend(chunk[:SMALL + 1 - len(head)])
        out.append({
            "name": part.name, "name_hex": hexs(part.name),
            "filename": part.filename, "filename_hex": hexs(part.filename),
            "content_type": part.headers.get("Content-Type"),
            "disposition_hex": hexs(part.headers.get("Content-Disposition")),
            "header_names": list(part.headers.keys()),
            "size": size, "sha256": h.hexdigest(),
            "value_hex": bytes(head).hex() if size <= SMALL else None,
        })
    rest = await request.content.read()  # after the close delimiter
    doc = framing(request)
    doc.update(parts=out, epilogue_hex=rest.hex(), total_bytes=request.content.total_bytes)
    return web.json_response(doc)


async def post(request):
    # request.post(): urlencoded or multipart, files as FileField
    data = await request.post()
    fields = []
    for k, v in data.items():
        if isinstance(v, web.FileField):
            content = v.file.read()
            fields.append({"name": k, "name_hex": hexs(k), "filename": v.filename,
                           "filename_hex": hexs(v.filename), "content_type": v.content_type,
                           "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
        else:
            if isinstance(v, (bytes, bytearray)):
                raw, kind = bytes(v), "bytes"
            else:
                raw, kind = v.encode("utf-8", "surrogateescape"), "str"
            fields.append({"name": k, "name_hex": hexs(k), "kind": kind, "value_hex": raw.hex()})
    doc = framing(request)
    doc.update(fields=fields)
    return web.json_response(doc)


async def redirect(request):
    # /redirect/{code}?to=URL[&read=1]: with read=1 the body is read first and
    # its digest returned in X-First-*; without, the answer goes out before the
    # body is read (aiohttp then drains it)
    code = int(request.match_info["code"])
    headers = {"Location": request.query.get("to", "/upload"),
               "X-First-Method": request.method,
               "X-First-Transfer-Encoding": request.headers.get("Transfer-Encoding", ""),
               "X-First-Content-Length": request.headers.get("Content-Length", "")}
    if request.query.get("read") == "1":
        body = await request.read()
        headers["X-First-Length"] = str(len(body))
        headers["X-First-Sha256"] = hashlib.sha256(body).hexdigest()
    resp = web.Response(status=code, text="redirect %d\n" % code, headers=headers)
    if request.query.get("close") == "1":
        resp.force_close()
    return resp


async def reject(request):
    # 413 at once, the body unread; with close=1 the connection is closed
    # after the answer instead of drained
    resp = web.Response(status=413, text="too large\n")
    if request.query.get("close") == "1":
        resp.force_close()
    return resp


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
    app.router.add_route("*", "/upload", upload)
    app.router.add_post("/parts", parts)
    app.router.add_put("/parts", parts)
    app.router.add_post("/post", post)
    app.router.add_route("*", "/redirect/{code}", redirect)
    app.router.add_post("/reject", reject)
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
