# W8's server: HTTP/1.1 on 127.0.0.1:PORT that reads every request body to
# the end, drops it, and answers 200 with the number of body bytes it read
# ("received=N"), so that a client can check the server got the whole upload.
# Bodies come with Content-Length or chunked; "Expect: 100-continue" gets its
# 100 at once. Keep-alive; one thread per connection.
#   /usr/bin/python3 bench/upload_server.py PORT
# (nginx answers a `return` location before it has read the body and cannot
# report how many bytes it discarded, hence this server.)
import socket
import socketserver
import sys

BUF = 1 << 20   # recv_into this much at a time, into one buffer: no allocation per read
MAX_HEAD = 65536


class Conn:
    """A connection's bytes: what recv gave beyond the current request part
    waits in self.pending."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = b""
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)

    def line(self):
        """One CRLF-terminated line without its CRLF; None at EOF."""
        while b"\r\n" not in self.pending:
            if len(self.pending) > MAX_HEAD:
                raise ValueError("line too long")
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def drop(self, n):
        """Read and drop exactly n bytes; raises at EOF before them."""
        take = min(n, len(self.pending))
        self.pending = self.pending[take:]
        n -= take
        while n > 0:
            got = self.sock.recv_into(self.view, min(n, BUF))
            if not got:
                raise EOFError(f"connection closed with {n} body bytes to come")
            n -= got


def read_head(conn):
    """The request line and lower-cased headers, or None at EOF."""
    first = conn.line()
    while first == b"":   # tolerate stray CRLFs between requests
        first = conn.line()
    if first is None:
        return None
    headers = {}
    while True:
        line = conn.line()
        if line is None:
            raise EOFError("connection closed in the request head")
        if not line:
            return first.decode("latin-1"), headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


def read_body(conn, headers):
    """Reads and drops the body: its length in bytes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = 0
        while True:
            size = int(conn.line().split(b";")[0], 16)
            if size == 0:
                while conn.line():   # trailers up to the empty line
                    pass
                return total
            conn.drop(size + 2)   # the chunk and its CRLF
            total += size
    n = int(headers.get("content-length", "0"))
    conn.drop(n)
    return n


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock)
        while True:
            head = read_head(conn)
            if head is None:
                return
            request_line, headers = head
            if headers.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            n = read_body(conn, headers)
            body = f"received={n}\n".encode()
            close = headers.get("connection", "").lower() == "close" or request_line.endswith("HTTP/1.0")
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                         % (len(body), b"Connection: close\r\n" if close else b"", body))
            if close:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: upload_server.py PORT")
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as server:
        server.serve_forever()
