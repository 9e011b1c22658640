# W9's file: SIZE bytes of log-like text lines (about 7:1 compressible with
# gzip -6), written gzip-compressed (one gzip member, deflate level 6) to OUT.
#   /usr/bin/python3 bench/make_gzip.py SIZE OUT
# Quick even for GiBs: the text is an 8 MiB block of lines again and again,
# which deflate compresses once. Each copy ends in a full flush, so it refers
# to nothing before it and its compressed bytes are the same each time; and
# deflate's 32 KiB window could not have seen the block's earlier copy
# anyway, so the ratio is what the text itself gives. Decoders see one
# ordinary stream (zcat, gzip -t and every HTTP client accept it).
import random
import struct
import sys
import zlib

BLOCK = 8 << 20
LEVEL = 6


def text_block(size):
    """size bytes of access-log lines, the same on every run."""
    r = random.Random(9)
    paths = ["/api/v1/items", "/api/v1/users", "/static/app.js", "/static/style.css", "/login",
             "/search", "/healthz", "/images/logo.png", "/api/v1/orders", "/favicon.ico"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0", "curl/7.88.1", "python-aiohttp/3.8.4",
              "Mozilla/5.0 (Macintosh) Safari/605.1.15", "lurl/0.1"]
    lines, n = [], 0
    while n < size:
        line = '127.0.0.%d - - [22/Nov/2026:%02d:%02d:%02d +0000] "%s %s?page=%d HTTP/1.1" %d %d "-" "%s"\n' % (
            r.randrange(1, 255), r.randrange(24), r.randrange(60), r.randrange(60),
            r.choice(["GET", "GET", "GET", "POST"]), r.choice(paths), r.randrange(100),
            r.choice([200, 200, 200, 304, 404]), r.randrange(100000), r.choice(agents))
        lines.append(line)
        n += len(line)
    return "".join(lines).encode()[:size]


def deflated(data, finish):
    """data as raw deflate from a fresh state: full-flushed, or the end of the stream."""
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if finish else zlib.Z_FULL_FLUSH)


def main(size, out):
    block = text_block(min(size, BLOCK))
    whole, rest = divmod(size, len(block)) if block else (0, 0)
    packed = deflated(block, False) if whole else b""
    crc = 0
    with open(out, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")   # gzip header: deflate, no name, Unix
        for _ in range(whole):
            f.write(packed)
            crc = zlib.crc32(block, crc)
        f.write(deflated(block[:rest], True))
        crc = zlib.crc32(block[:rest], crc)
        f.write(struct.pack("<II", crc, size & 0xFFFFFFFF))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_gzip.py SIZE OUT")
    main(int(sys.argv[1]), sys.argv[2])
