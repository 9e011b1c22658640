"""The comparison of spec/interop_aiohttp_wire_test.sh: what aiohttp and
lurl sent for each case (saved by wire_aiohttp_client.py and
wire_lurl_client.lua), byte for byte where they should match:
  python3 wire_compare.py AIOHTTP_DIR LURL_DIR
The request line, every header line and the body must be the same bytes,
and the requests must have used the same connections, except:
  - always: User-Agent (each names itself), Accept-Encoding (lurl lists the
    codings it decodes, br and zstd too) and the order of the header lines;
  - EXPECTED below, case by case, each checked on both sides so that a
    change in either is noticed.
Prints one line per case and exits 1 when any failed.
"""
import os
import sys

AIO, LURL = sys.argv[1], sys.argv[2]
ALWAYS = {b"user-agent", b"accept-encoding"}


def dechunk(body):
    out, pos = b"", 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return out
        out += body[end + 2:end + 2 + size]
        pos = end + 4 + size


def split(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = [line for line in lines[1:] if line.split(b":", 1)[0].lower() not in ALWAYS]
    return lines[0], fields, body


def field(fields, name):
    for line in fields:
        key, _, value = line.partition(b":")
        if key.lower() == name:
            return value.strip()
    return None


def load(d, case):
    err = os.path.join(d, case + ".error")
    if os.path.exists(err):
        return {"error": open(err).read().strip()}
    reqs, n = [], 1
    while os.path.exists(os.path.join(d, "%s.%d.req" % (case, n))):
        reqs.append(split(open(os.path.join(d, "%s.%d.req" % (case, n)), "rb").read()))
        n += 1
    return {"requests": reqs, "conns": open(os.path.join(d, case + ".conns")).read().split()}


# case -> (what differs, check(aiohttp, lurl) -> None or why it failed, and
# how the rest is compared: None (not at all) or { skip = header names left
# out, dechunked = bodies compared without their chunked framing, conns =
# whether the connections must match })
def open11(a, l):
    if a["conns"] != ["1", "1"] or l["conns"] != ["1", "2"]:
        return "want aiohttp on 1 connection, lurl on 2, got %s and %s" % (a["conns"], l["conns"])


def generator10(a, l):
    if "error" in a or field(a["requests"][0][1], b"transfer-encoding") != b"chunked":
        return "want aiohttp to send it chunked, got %r" % a
    if "HTTP/1.0 cannot frame a body of unknown length" not in l.get("error", ""):
        return "want lurl's argument error, got %r" % l


def compress(a, l):
    if field(a["requests"][0][1], b"transfer-encoding") != b"chunked":
        return "want aiohttp to send it chunked"
    if field(l["requests"][0][1], b"content-length") != str(len(l["requests"][0][2])).encode():
        return "want lurl to send a Content-Length"


def empty_post(a, l):
    if field(a["requests"][0][1], b"content-type") != b"application/octet-stream":
        return "want aiohttp's Content-Type: application/octet-stream"
    if field(l["requests"][0][1], b"content-type") is not None:
        return "want no Content-Type from lurl"


EXPECTED = {
    "get10_open11": ("an HTTP/1.1 answer without Connection: close to a 1.0 request: aiohttp reuses the "
                     "connection, lurl does not (RFC 9112 section 9.3: the request did not ask to keep it)",
                     open11, {"conns": False}),
    "post10_generator": ("HTTP/1.0 and a body of unknown length: aiohttp sends it chunked, which 1.0 does not "
                         "have (RFC 9112 section 6.1); lurl raises an argument error", generator10, None),
    "post_compress": ("compress = true: aiohttp chunks even a body of known length, lurl compresses it at once "
                      "and sends a Content-Length; the deflate bytes are the same", compress,
                      {"skip": {b"content-length", b"transfer-encoding"}, "dechunked": True}),
    "post_empty": ("a POST without a body: aiohttp 3.8 sends Content-Type: application/octet-stream, lurl none "
                   "(no content, no type: RFC 9110 section 8.3)", empty_post, {"skip": {b"content-type"}}),
}


def same(a, l, how):
    skip, dechunked = how.get("skip", set()), how.get("dechunked", False)
    if ("error" in a) != ("error" in l):
        return "one failed: aiohttp %r, lurl %r" % (a.get("error"), l.get("error"))
    if "error" in a:
        return None
    if len(a["requests"]) != len(l["requests"]):
        return "%d requests from aiohttp, %d from lurl" % (len(a["requests"]), len(l["requests"]))
    for i, ((aline, afields, abody), (lline, lfields, lbody)) in enumerate(zip(a["requests"], l["requests"]), 1):
        if aline != lline:
            return "request %d: request line %r vs %r" % (i, aline, lline)
        af = sorted(f for f in afields if f.split(b":", 1)[0].lower() not in skip)
        lf = sorted(f for f in lfields if f.split(b":", 1)[0].lower() not in skip)
        if af != lf:
            return "request %d: header lines differ: aiohttp only %r, lurl only %r" % (
                i, sorted(set(af) - set(lf)), sorted(set(lf) - set(af)))
        if dechunked:
            if field(afields, b"transfer-encoding") == b"chunked":
                abody = dechunk(abody)
            if field(lfields, b"transfer-encoding") == b"chunked":
                lbody = dechunk(lbody)
        if abody != lbody:
            return "request %d: bodies differ: %r vs %r" % (i, abody[:80], lbody[:80])
    if how.get("conns", True) and a["conns"] != l["conns"]:
        return "connections differ: aiohttp %s, lurl %s" % (a["conns"], l["conns"])
    return None


def main():
    cases = sorted({f.split(".")[0] for f in os.listdir(AIO) if not f.startswith("info.")})
    failed = 0
    for case in cases:
        a, l = load(AIO, case), load(LURL, case)
        what, check, how = EXPECTED.get(case, (None, None, {}))
        why = check(a, l) if check else None
        if not why and how is not None:
            why = same(a, l, how)
        if why:
            failed += 1
            print("FAIL %s: %s" % (case, why))
        elif what:
            print("ok   %s (expected difference: %s)" % (case, what))
        else:
            print("ok   %s (the same bytes)" % case)
    print("wire comparison: %d cases, %d failed" % (len(cases), failed))
    return 1 if failed or not cases else 0


sys.exit(main())
