"""Two fake HTTP proxies and a fake origin on 127.0.0.1 for
spec/interop_noproxy_curl_test.sh. Run as
    python3 noproxy_peer.py LOG
each binds port 0; the first line printed is "PROXY_A PROXY_B ORIGIN". Every
connection appends "ROLE FIRST-LINE" to LOG (ROLE is proxy-a, proxy-b or
origin; FIRST-LINE is the request line, or "TLS" for a TLS handshake) before
anything is answered, so a client that has its answer finds its line there.
A request gets 200 with the role as body, CONNECT gets 403 (nothing is ever
tunnelled or forwarded), TLS is closed. Runs until terminated."""
import socket
import sys
import threading

LOG_LOCK = threading.Lock()
ROLES = ("proxy-a", "proxy-b", "origin")


def read_head(conn):
    data = b""
    conn.settimeout(2)
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
            if data[:1] == b"\x16":  # a TLS ClientHello: no head will come
                break
    except OSError:
        pass
    return data


def reply_for(role, head):
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if head[:1] == b"\x16":
        return "TLS", b""
    if line.startswith("CONNECT "):
        return line, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    body = role.encode()
    return line, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)


def serve(conn, role, log_path):
    with conn:
        line, reply = reply_for(role, read_head(conn))
        with LOG_LOCK, open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{role} {line}\n")
        try:
            conn.sendall(reply)
        except OSError:
            pass


def accept_loop(sock, role, log_path):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn, role, log_path), daemon=True).start()


def main():
    log_path = sys.argv[1]
    socks = []
    for _ in ROLES:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        socks.append(s)
    for s, role in zip(socks[1:], ROLES[1:]):
        threading.Thread(target=accept_loop, args=(s, role, log_path), daemon=True).start()
    print(*(s.getsockname()[1] for s in socks), flush=True)
    accept_loop(socks[0], ROLES[0], log_path)


if __name__ == "__main__":
    main()
