"""Raw echo server for spec/interop_aiohttp_wire_test.sh.

Run with any Python 3 (no aiohttp needed):
    python3 spec/interop/wire_echo_server.py
Binds 127.0.0.1 port 0, prints the port on the first line of stdout and
serves until killed. Each request is read as bytes (the head, then a body by
its Content-Length or its chunked framing, kept as it came) and answered
with those exact bytes as the body, with X-Conn (the connection's number)
and X-Seq (the request's number on it). The path picks the answer:
  /close10     HTTP/1.0 200 without keep-alive, then the connection closes
  /open11      HTTP/1.1 200 without a Connection field, the connection kept
               open whatever the request said (a sloppy server)
  /redirect    302 to RAW_LOCATION (relative), /redirect-abs the same absolute
  anything else: the request's own version; for 1.0 keep-alive only when
               the request asked for it, for 1.1 unless it said close.
"""
import asyncio
import sys

RAW_LOCATION = "/landing/a%7Eb%7e?q=%7E%41%2f"
connections = 0


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name:
            fields.setdefault(name.strip().lower(), value.strip())
    raw = head
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            raw += line
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        return head, fields, raw
            raw += await reader.readexactly(size + 2)
    length = int(fields.get(b"content-length", b"0"))
    return head, fields, raw + await reader.readexactly(length)


def answer(head, fields, raw, conn, seq, port):
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    _, target, version = line.split(" ")
    connection = fields.get(b"connection", b"").decode("latin-1").lower()
    path = target.split("?", 1)[0]
    extra = []
    if path == "/close10":
        status, keep = "HTTP/1.0 200 OK", False
    elif path == "/open11":
        status, keep = "HTTP/1.1 200 OK", True
    elif version == "HTTP/1.0":
        keep = "keep-alive" in connection
        status = "HTTP/1.0 200 OK"
        if keep:
            extra.append("Connection: keep-alive")
    else:
        keep = "close" not in connection
        status = "HTTP/1.1 200 OK"
        if not keep:
            extra.append("Connection: close")
    if path in ("/redirect", "/redirect-abs"):
        status = status[:9] + "302 Found"
        location = RAW_LOCATION if path == "/redirect" else "http://127.0.0.1:%d%s" % (port, RAW_LOCATION)
        extra.append("Location: " + location)
    body = raw
    lines = [status, "Content-Type: application/octet-stream", "Content-Length: %d" % len(body),
             "X-Conn: %d" % conn, "X-Seq: %d" % seq] + extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, keep


async def serve(reader, writer):
    global connections
    connections += 1
    conn, seq = connections, 0
    port = writer.get_extra_info("sockname")[1]
    try:
        while True:
            head, fields, raw = await read_request(reader)
            seq += 1
            data, keep = answer(head, fields, raw, conn, seq, port)
            writer.write(data)
            await writer.drain()
            if not keep:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
