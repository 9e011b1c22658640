"""A WebSocket conformance server for testing WebSocket CLIENTS, after the
Autobahn|Testsuite "fuzzingserver" (its cases, numbering and verdicts; written
from the case definitions, not copied). Standard library only; run with the
system Python:

    /usr/bin/python3 spec/interop/ws_fuzzingserver.py [--report FILE] [--cases PATTERNS]

Binds 127.0.0.1 port 0 and prints the port on the first line of stdout. The
client under test drives it like Autobahn's fuzzingserver, every endpoint a
WebSocket URL:

    /getCaseCount                      one text message: the number of cases
    /getCaseInfo?case=N                one text message: {"id": "1.1.1", "description": ...}
    /runCase?case=N&agent=A            runs case N (1-based index, or its id "1.1.1")
    /getCaseStatus?case=N&agent=A      one text message: {"behavior": ...}
    /updateReports?agent=A             writes the JSON report (--report FILE)

and GET /report (plain HTTP) answers the report as JSON. The report is also
written when the server gets SIGTERM or SIGINT. With --summarize REPORT it
prints an agent's verdicts from a report instead of serving. With
--deflate-rules rfc7692 the 13.x cases ask for client_no_context_takeover
even when the client's offer does not have the parameter (RFC 7692 7.1.1.2
allows it; Autobahn then declines the extension, UNIMPLEMENTED).

During a case the client is expected to echo every text and binary message
back with the same type and answer pings, and to fail the connection where
RFC 6455 says it must. Each case is judged like Autobahn: "behavior" compares
what the client sent back with the case's expected outcomes (OK, NON-STRICT,
or FAILED when none matches; INFORMATIONAL and UNIMPLEMENTED where the case
says so), "behaviorClose" judges the closing handshake (who closed, clean or
not, the close code). The one-word "verdict" combines the two: FAILED when
either failed (an unclean close where the case requires a clean one is a
failure), NON-STRICT when only the close code was not the preferred one.

Stricter than Autobahn, on purpose:
  * where the client must fail the connection and the server had to drop it
    after the case's timeout instead, the case FAILED (Autobahn lets a client
    that silently ignores a broken frame pass);
  * any protocol violation in what the client sends (an unmasked frame,
    invalid UTF-8 in a text message, a bad close code...) fails the case;
  * echoed section 9 messages are compared byte for byte, not by length only.

Scaled down so a full run takes well under a minute (see the constants below):
section 9 message sizes and fragment sizes by 1/16 (16 MiB -> 1 MiB) and its
round-trip counts (9.7, 9.8) by 1/10; sections 12 and 13 send 10 messages per
case instead of 1000, payload and auto-fragment sizes by 1/16, over synthetic
test data made here (Autobahn ships text, image and PDF files). The waits
inside cases 5.19, 5.20 and 6.4.x last 0.5 s instead of 1 s; the timers that
end a case keep Autobahn's values, but at least 1 s and at most 5 s (sections
9, 12 and 13 give up after 5 s instead of 10 to 480 s).
"""
import argparse
import asyncio
import base64
import fnmatch
import hashlib
import json
import os
import random
import signal
import socket
import struct
import sys
import time
import urllib.parse
import zlib

# --- scale (see the module docstring) ----------------------------------------
SIZE_DIVISOR = 16          # section 9, 12, 13 payload and fragment sizes
RTT_COUNT_DIVISOR = 10     # 9.7.x / 9.8.x messages per case (1000 -> 100)
DEFLATE_COUNT = 10         # 12.x.x / 13.x.x messages per case (1000 -> 10)
WAIT_SCALE = 0.5           # the waits inside cases (5.19, 5.20, 6.4.x): 1 s -> 0.5 s
TIMER_FLOOR = 1.0          # the timers that end a case (killAfter, closeAfter) keep
TIMER_CAP = 5.0            # Autobahn's values within these (its 0.5 s to 480 s)
CLOSE_TIMEOUT = 1.0        # waiting for the client's close frame after ours
CHOP_PAUSE = 0.0005        # between the writes of a chopped frame (few chops only)
MAX_MESSAGE = 64 << 20     # the largest message taken from a client

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# outcomes (the words of Autobahn's reports)
OK = "OK"
NON_STRICT = "NON-STRICT"
FAILED = "FAILED"
INFORMATIONAL = "INFORMATIONAL"
UNIMPLEMENTED = "UNIMPLEMENTED"
WRONG_CODE = "WRONG CODE"
UNCLEAN = "UNCLEAN"

# opcodes and close codes (RFC 6455 5.2, 7.4.1)
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
NORMAL, PROTOCOL_ERROR, INVALID_PAYLOAD, TOO_BIG = 1000, 1002, 1007, 1009


def case_timer(seconds):
    """A timer that ends a case: a conformant client ends the case before it
    fires, so only a slow machine would notice a shorter one."""
    return min(TIMER_CAP, max(TIMER_FLOOR, seconds))


def repeat_to(payload, length):
    """Autobahn's payload_len: the payload repeated to this many octets."""
    if length is None:
        return payload
    if not payload:
        return b"\x00" * length
    return (payload * (length // len(payload) + 1))[:length]


def frame_head(opcode, length, fin=True, rsv=0):
    """A server frame's header (unmasked, RFC 6455 5.2). rsv is Autobahn's
    3-bit number: 4 = RSV1, 2 = RSV2, 1 = RSV3."""
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 15)
    if length < 126:
        return bytes((b0, length))
    if length < 65536:
        return struct.pack("!BBH", b0, 126, length)
    return struct.pack("!BBQ", b0, 127, length)


def frame(opcode, payload=b"", fin=True, rsv=0):
    return frame_head(opcode, len(payload), fin, rsv) + payload


def close_payload(code=None, reason=None):
    """Autobahn's sendCloseFrame: either part may be absent, so that broken
    close frames (one octet, invalid UTF-8, too long) can be built."""
    out = b""
    if code is not None:
        out += struct.pack("!H", code)
    if reason is not None:
        out += reason
    return out


def valid_close_code(code):
    # RFC 6455 7.4.1/7.4.2 and the IANA registry: what may be sent on the wire
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) \
        or 3000 <= code <= 4999


def describe(data, limit=24):
    if len(data) <= limit:
        return repr(data)
    return repr(data[:limit]) + "...(%d)" % len(data)


class Violation(Exception):
    """The client broke the protocol: fail the connection with this code."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


# --- permessage-deflate (RFC 7692) --------------------------------------------

def parse_offers(header):
    """The client's permessage-deflate offers, in its order of preference,
    in Autobahn's terms: accept_* = what the client lets the server ask of it,
    request_* = what the client asks of the server. Malformed offers are
    dropped (RFC 7692 5: a server must decline an offer it cannot parse)."""
    offers = []
    for ext in (header or "").split(","):
        parts = [p.strip() for p in ext.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        offer = {"accept_no_context_takeover": False, "accept_max_window_bits": False,
                 "request_no_context_takeover": False, "request_max_window_bits": 0}
        seen = set()
        good = True
        for p in parts[1:]:
            name, _, value = p.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name in seen:
                good = False
            seen.add(name)
            if name == "client_max_window_bits":
                good = good and (value == "" or value in [str(b) for b in range(8, 16)])
                offer["accept_max_window_bits"] = True
            elif name == "client_no_context_takeover":
                good = good and value == ""
                offer["accept_no_context_takeover"] = True
            elif name == "server_max_window_bits":
                good = good and value in [str(b) for b in range(8, 16)]
                offer["request_max_window_bits"] = int(value) if good else 0
            elif name == "server_no_context_takeover":
                good = good and value == ""
                offer["request_no_context_takeover"] = True
            else:
                good = False
        if good:
            offers.append(offer)
    return offers


def accept_offer(offer, no_context_takeover=False, max_window_bits=0):
    """The agreed parameters: the server honours what the offer requests of
    it and asks the client for no_context_takeover / max_window_bits."""
    return {"server_no_context_takeover": offer["request_no_context_takeover"],
            "server_max_window_bits": offer["request_max_window_bits"],
            "client_no_context_takeover": no_context_takeover,
            "client_max_window_bits": max_window_bits}


def response_header(params):
    out = ["permessage-deflate"]
    if params["server_no_context_takeover"]:
        out.append("server_no_context_takeover")
    if params["server_max_window_bits"]:
        out.append("server_max_window_bits=%d" % params["server_max_window_bits"])
    if params["client_no_context_takeover"]:
        out.append("client_no_context_takeover")
    if params["client_max_window_bits"]:
        out.append("client_max_window_bits=%d" % params["client_max_window_bits"])
    return "; ".join(out)


# Autobahn asks a client for client_no_context_takeover only when its offer
# has the parameter; RFC 7692 7.1.1.2 lets a server ask regardless, as
# --deflate-rules rfc7692 does.
NCT_NEEDS_OFFER = True


def accepter(need_nct, need_mwb, no_context_takeover, max_window_bits):
    """Autobahn 13.x's server accept rules: the first offer that lets the
    server ask what it wants to ask (client_no_context_takeover and/or
    client_max_window_bits in the offer), or none."""
    def accept(offers):
        for o in offers:
            if (not need_nct or not NCT_NEEDS_OFFER or o["accept_no_context_takeover"]) and \
                    (not need_mwb or o["accept_max_window_bits"]):
                return accept_offer(o, no_context_takeover, max_window_bits)
        return None
    accept.__doc__ = "server accept (requestNoContextTakeover, requestMaxWindowBits): [(%s, %d)]" % (
        no_context_takeover, max_window_bits)
    return accept


ACCEPT1 = accepter(False, False, False, 0)
ACCEPT2 = accepter(True, False, True, 0)
ACCEPT3 = accepter(False, True, False, 8)
ACCEPT4 = accepter(False, True, False, 15)
ACCEPT5 = accepter(True, True, True, 8)
ACCEPT6 = accepter(True, True, True, 15)


def accept7(offers):
    """server accept (requestNoContextTakeover, requestMaxWindowBits): [(True, 8), (True, 0), (False, 0)]"""
    return ACCEPT5(offers) or ACCEPT2(offers) or ACCEPT1(offers)


def window(bits):
    # zlib has no raw deflate with a 256-octet window (windowBits 8 became
    # an error in zlib 1.2.9), so every zlib-based peer uses 512 for 8.
    return max(9, bits or 15)


class Deflate:
    """The server's half of permessage-deflate (RFC 7692 7.2)."""

    def __init__(self, params):
        self.params = params
        self.send_bits = window(params["server_max_window_bits"])
        self.recv_bits = window(params["client_max_window_bits"])
        self.compressor = None
        self.inflater = None

    def compress(self, data):
        if self.compressor is None or self.params["server_no_context_takeover"]:
            self.compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.send_bits)
        out = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out

    def decompress(self, data):
        # A fresh inflater per message when the client agreed not to take its
        # context over: a client that does anyway refers to octets this
        # inflater never saw and the message fails to inflate.
        if self.inflater is None or self.params["client_no_context_takeover"]:
            self.inflater = zlib.decompressobj(-self.recv_bits)
        try:
            out = self.inflater.decompress(data + b"\x00\x00\xff\xff", MAX_MESSAGE)
        except zlib.error as e:
            raise Violation(INVALID_PAYLOAD, "compressed message does not inflate: %s" % e)
        if self.inflater.unconsumed_tail:
            raise Violation(TOO_BIG, "compressed message inflates past %d octets" % MAX_MESSAGE)
        return out


# --- one case run: Autobahn's Case and FuzzingProtocol in one -----------------

class Run:
    """A case running on one connection: what the case sends, what the client
    sent back (self.received), and the judgement when the connection is gone."""

    def __init__(self, server, case, agent, reader, writer, deflate):
        self.server, self.case, self.agent = server, case, agent
        self.reader, self.writer = reader, writer
        self.deflate = deflate
        self.loop = asyncio.get_running_loop()
        self.received = []
        self.expected = {}
        self.expected_close = {"closedByMe": True, "closeCode": [NORMAL], "requireClean": True}
        self.behavior = FAILED
        self.behavior_close = FAILED
        self.result = "Actual events differ from any expected."
        self.result_close = "TCP connection was dropped without close handshake"
        self.suppress_close = False
        self.non_strict_why = None
        self.state = "open"            # open -> closing (we sent close) -> closed
        self.closed_by_me = False
        self.failed_by_me = False
        self.killed = False
        self.sent_close = self.got_close = False
        self.local_code = self.remote_code = None
        self.remote_reason = None
        self.violation = None
        self.trace = []
        self.timers = []
        self.queue = asyncio.Queue()
        self.message = None            # [opcode, [fragments], compressed] while one is coming in
        self.vars = {}                 # per-case counters (sections 9, 12, 13)
        self.started = time.monotonic()

    # -- trace: what the client did, for the report ---------------------------
    def note(self, text):
        if len(self.trace) < 60:
            self.trace.append("%6.3fs %s" % (time.monotonic() - self.started, text))
        elif len(self.trace) == 60:
            self.trace.append("...")

    # -- sending (Autobahn's sendFrame / sendMessage / sendClose) -------------
    def write(self, data, chop=None, sync=False):
        self.queue.put_nowait((data, chop, sync))

    def frame(self, opcode, payload=b"", fin=True, rsv=0, length=None, chop=None, sync=False):
        self.write(frame(opcode, repeat_to(payload, length), fin, rsv), chop, sync)

    def send_message(self, payload, binary=False, frag_size=None):
        """A data message; frag_size splits it into frames of that size."""
        opcode = BINARY if binary else TEXT
        if self.deflate is not None:
            wire, rsv = self.deflate.compress(payload), 4
        else:
            wire, rsv = payload, 0
        if not frag_size or len(wire) <= frag_size:
            self.frame(opcode, wire, rsv=rsv)
            return
        for i in range(0, len(wire), frag_size):
            last = i + frag_size >= len(wire)
            self.frame(opcode if i == 0 else CONT, wire[i:i + frag_size], fin=last, rsv=rsv if i == 0 else 0)

    def close_frame(self, code=None, reason=None):
        """Start the closing handshake (raw payload parts, as the case says)."""
        if self.state != "open":
            return
        self.state = "closing"
        self.closed_by_me = not self.got_close
        self.sent_close = True
        self.local_code = code
        self.frame(CLOSE, close_payload(code, reason))
        self.after(CLOSE_TIMEOUT, self.drop_close_timeout)

    def close(self, code=NORMAL):
        self.close_frame(code)

    def drop(self):
        self.queue.put_nowait(None)

    def drop_close_timeout(self):
        if self.state == "closing":
            self.note("server: no close frame from the client within %.1fs, dropping TCP" % CLOSE_TIMEOUT)
            self.failed_by_me = True
            self.drop()

    # -- timers (killAfter, closeAfter, continueLater) -------------------------
    def after(self, seconds, fn):
        self.timers.append(self.loop.call_later(seconds, fn))

    def kill_after(self, seconds):
        seconds = case_timer(seconds)

        def kill():
            if self.state != "closed":
                self.note("server: case timeout (%.2fs), dropping TCP" % seconds)
                self.killed = self.failed_by_me = True
                self.drop()
        self.after(seconds, kill)

    def close_after(self, seconds):
        seconds = case_timer(seconds)

        def close():
            if self.state == "open":
                self.note("server: case timer (%.2fs), sending close" % seconds)
                self.close()
        self.after(seconds, close)

    def later(self, seconds, fn):
        def go():
            if self.state == "open":
                fn()
        self.after(seconds, go)

    @property
    def is_open(self):
        return self.state == "open"

    def expect(self, ok, non_strict=None, why=None):
        """The outcomes: OK, and NON-STRICT with why it is not strict."""
        self.expected = {OK: ok}
        if non_strict is not None:
            self.expected[NON_STRICT] = non_strict
            self.non_strict_why = why

    def expect_close(self, by_me, codes, clean):
        self.expected_close = {"closedByMe": by_me, "closeCode": codes, "requireClean": clean}

    # -- the client's side ------------------------------------------------------
    def record(self, event):
        self.received.append(event)
        self.finish_when_done()

    def finish_when_done(self):
        # Autobahn: once what came back matches the (only) expected outcome,
        # a case the server is to close is closed right away.
        if not self.expected or any(self.received != e for e in self.expected.values()):
            return
        if self.expected_close["closedByMe"] and not self.suppress_close:
            self.close(self.expected_close["closeCode"][0])

    def on_message(self, payload, binary):
        hook = self.case.on_message
        if hook:
            hook(self, payload, binary)
        else:
            self.record(("message", payload, binary))

    async def sender(self):
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    break
                data, chop, sync = item
                if chop:
                    pause = CHOP_PAUSE if len(data) <= 300 * chop else 0
                    for i in range(0, len(data), chop):
                        self.writer.write(data[i:i + chop])
                        await self.writer.drain()
                        if pause:
                            await asyncio.sleep(pause)
                else:
                    self.writer.write(data)
                    await self.writer.drain()
                    if sync:
                        await asyncio.sleep(0.001)
        except (ConnectionError, OSError):
            pass
        finally:
            self.writer.close()

    async def read_frame(self):
        b0, b1 = await self.reader.readexactly(2)
        fin, rsv, opcode, masked, n = b0 >> 7, (b0 >> 4) & 7, b0 & 15, b1 >> 7, b1 & 127
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            if n >> 63:
                raise Violation(PROTOCOL_ERROR, "64-bit length with the top bit set (RFC 6455 5.2)")
        if n > MAX_MESSAGE:
            raise Violation(TOO_BIG, "frame of %d octets" % n)
        if not masked:
            raise Violation(PROTOCOL_ERROR, "unmasked frame from the client (RFC 6455 5.3)")
        key = await self.reader.readexactly(4)
        data = await self.reader.readexactly(n)
        if n:
            k = (key * (n // 4 + 1))[:n]
            data = (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
        return opcode, data, bool(fin), rsv

    def on_frame(self, opcode, data, fin, rsv):
        names = {CONT: "cont", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}
        if opcode == CLOSE and len(data) >= 2:
            shown = "code=%d reason=%s" % (struct.unpack("!H", data[:2])[0], describe(data[2:]))
        else:
            shown = describe(data)
        self.note("rx %s%s%s %s" % (names.get(opcode, "op%d" % opcode), "" if fin else " (fin=0)",
                                    " rsv=%d" % rsv if rsv else "", shown))
        if self.got_close:
            raise Violation(PROTOCOL_ERROR, "frame after the client's close frame (RFC 6455 5.5.1)")
        rsv1_ok = self.deflate is not None and opcode in (TEXT, BINARY)
        if rsv & 3 or (rsv & 4 and not rsv1_ok):
            raise Violation(PROTOCOL_ERROR, "reserved bits set (RFC 6455 5.2)")
        if opcode >= 8:
            self.on_control(opcode, data, fin)
        elif opcode == CONT:
            if self.message is None:
                raise Violation(PROTOCOL_ERROR, "continuation without a message (RFC 6455 5.4)")
            self.message[1].append(data)
            self.end_fragment(fin)
        elif opcode in (TEXT, BINARY):
            if self.message is not None:
                raise Violation(PROTOCOL_ERROR, "new message inside a fragmented one (RFC 6455 5.4)")
            self.message = [opcode, [data], bool(rsv & 4)]
            self.end_fragment(fin)
        else:
            raise Violation(PROTOCOL_ERROR, "reserved opcode %d (RFC 6455 5.2)" % opcode)

    def end_fragment(self, fin):
        if not fin:
            return
        opcode, parts, compressed = self.message
        self.message = None
        payload = b"".join(parts)
        if compressed:
            payload = self.deflate.decompress(payload)
        if opcode == TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Violation(INVALID_PAYLOAD, "text message is not UTF-8: %s" % e)
        self.on_message(payload, opcode == BINARY)

    def on_control(self, opcode, data, fin):
        if not fin or len(data) > 125:
            raise Violation(PROTOCOL_ERROR, "fragmented or long control frame (RFC 6455 5.5)")
        if opcode == PING:
            self.received.append(("ping", data))
            if self.state == "open":
                self.frame(PONG, data)
            self.finish_when_done()
        elif opcode == PONG:
            self.record(("pong", data))
        elif opcode == CLOSE:
            self.on_close(data)
        else:
            raise Violation(PROTOCOL_ERROR, "reserved opcode %d (RFC 6455 5.2)" % opcode)

    def on_close(self, data):
        if len(data) == 1:
            raise Violation(PROTOCOL_ERROR, "close frame with a one-octet payload (RFC 6455 5.5.1)")
        self.got_close = True
        if data:
            self.remote_code = struct.unpack("!H", data[:2])[0]
            try:
                self.remote_reason = data[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise Violation(INVALID_PAYLOAD, "close reason is not UTF-8 (RFC 6455 5.5.1)")
            if not valid_close_code(self.remote_code):
                raise Violation(PROTOCOL_ERROR, "close code %d may not be sent (RFC 6455 7.4)" % self.remote_code)
        if self.state == "open":
            # the client starts the closing handshake: answer with its code
            self.state = "closing"
            self.sent_close = True
            self.frame(CLOSE, data[:2])
        # RFC 6455 7.1.1: the server closes the TCP connection first
        self.drop()

    def fail(self, violation):
        self.violation = str(violation)
        self.note("server: client protocol violation: %s" % violation)
        self.failed_by_me = True
        if self.state == "open":
            self.state = "closing"
            self.closed_by_me = True
            self.sent_close = True
            self.frame(CLOSE, close_payload(violation.code))
        self.drop()

    async def run(self):
        send_task = asyncio.ensure_future(self.sender())
        try:
            self.case.run(self)
            while True:
                opcode, data, fin, rsv = await self.read_frame()
                self.on_frame(opcode, data, fin, rsv)
        except Violation as v:
            self.fail(v)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.note("tcp: connection closed (%s)" % ("after the close handshake" if self.got_close and
                                                       self.sent_close else "no close handshake"))
        finally:
            self.drop()
            await send_task
            self.state = "closed"
            for t in self.timers:
                t.cancel()
            self.judge()

    # -- judgement (Autobahn's Case.onConnectionLost, plus the strict rules) ---
    def judge(self):
        for outcome, events in self.expected.items():
            if self.received == events:
                self.behavior = outcome
                self.result = "Actual events match at least one expected."
                if outcome == NON_STRICT and self.non_strict_why:
                    self.result = self.non_strict_why
                break
        was_clean = self.sent_close and self.got_close
        ec = self.expected_close
        if ec["closedByMe"] != self.closed_by_me:
            self.behavior_close = FAILED
            self.result_close = "The connection was failed by the wrong endpoint"
        elif ec["requireClean"] and not was_clean:
            self.behavior_close = UNCLEAN
            self.result_close = "The spec requires the connection to be failed cleanly here"
        elif self.remote_code is not None and self.remote_code not in ec["closeCode"]:
            self.behavior_close = WRONG_CODE
            self.result_close = "The close code should have been %s or empty" % ",".join(map(str, ec["closeCode"]))
        else:
            self.behavior_close = OK
            self.result_close = "Connection was properly closed"
        if self.result is None:
            self.result = "The connection ended before all echoes came back (message %d of %d sent)." % (
                self.vars["count"], self.vars["total"])
        if self.case.wrong_code_fails and self.behavior_close == WRONG_CODE:
            self.behavior = FAILED
            self.result = self.result_close
        if self.case.post:
            self.case.post(self)
        if not ec["closedByMe"] and self.behavior not in (INFORMATIONAL, UNIMPLEMENTED):
            if self.killed:
                self.behavior = FAILED
                self.result = "The client did not fail the connection: the server dropped it after the case timeout."
            elif self.remote_code == NORMAL and NORMAL not in ec["closeCode"]:
                # closing normally is not failing the connection (RFC 6455 7.1.7)
                self.behavior = FAILED
                self.result = "The client closed normally (1000) where it must fail the connection."
        if self.violation and self.behavior not in (INFORMATIONAL,):
            self.behavior = FAILED
            self.result = "The client broke the protocol: %s" % self.violation
        self.server.store(self, was_clean)

    def verdict(self):
        if self.behavior in (INFORMATIONAL, UNIMPLEMENTED):
            return self.behavior
        if self.behavior == FAILED or self.behavior_close in (FAILED, UNCLEAN):
            return FAILED
        if self.behavior_close == WRONG_CODE:
            return NON_STRICT
        return self.behavior


# --- the cases ----------------------------------------------------------------

class Case:
    def __init__(self, cid, description, expectation, run, on_message=None, post=None,
                 wrong_code_fails=False, accept=None):
        self.id, self.description, self.expectation = cid, description, expectation
        self.run, self.on_message, self.post = run, on_message, post
        self.wrong_code_fails = wrong_code_fails
        self.accept = accept      # permessage-deflate accept rule (sections 12, 13)


CASES = []


def add(cid, description, expectation, **kw):
    def deco(run):
        CASES.append(Case(cid, description, expectation, run, **kw))
        return run
    return deco


def expect_echo(t, payload, binary=False):
    t.expect([("message", payload, binary)])
    t.expect_close(True, [NORMAL], True)


ECHO_FIRST = "The client failed the connection before echoing the valid message sent ahead of the bad frame " \
             "(allowed: it read both before its echo went out)."


def expect_failure(t, code=PROTOCOL_ERROR, ok=(), non_strict=None):
    t.expect(list(ok), non_strict, ECHO_FIRST)
    t.expect_close(False, [code], False)


HELLO = b"Hello, world!"
SMALL_BINARY = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"


def section1():
    sizes = [0, 125, 126, 127, 128, 65535, 65536, 65536]
    for sub, (kind, opcode, fill) in enumerate([("text", TEXT, b"*"), ("binary", BINARY, b"\xfe")], 1):
        for i, n in enumerate(sizes, 1):
            chop = 997 if i == 8 else None

            def run(t, n=n, opcode=opcode, fill=fill, chop=chop):
                expect_echo(t, fill * n, opcode == BINARY)
                t.frame(opcode, fill * n, chop=chop)
                t.kill_after(10 if n > 128 else 1)
            CASES.append(Case("1.%d.%d" % (sub, i), "Send %s message with payload of length %d%s." % (
                kind, n, ", sent out in chops of 997 octets" if chop else ""),
                "Receive echo'ed %s message (with payload as sent). Clean close with normal code." % kind, run))


def section2():
    def ping_case(num, desc, payload, chop=None):
        @add("2.%d" % num, desc, "Pong (with the ping's payload) is sent in reply to Ping. "
             "Clean close with normal code.")
        def run(t):
            t.expect([("pong", payload)])
            t.expect_close(True, [NORMAL], True)
            t.frame(PING, payload, chop=chop)
            t.close_after(2 if chop else 1)

    ping_case(1, "Send ping without payload.", b"")
    ping_case(2, "Send ping with small text payload.", HELLO)
    ping_case(3, "Send ping with small binary (non UTF-8) payload.", SMALL_BINARY)
    ping_case(4, "Send ping with binary payload of 125 octets.", b"\xfe" * 125)

    @add("2.5", "Send ping with binary payload of 126 octets.",
         "Connection is failed immediately (1002/Protocol Error), since control frames are only "
         "allowed to have payload up to and including 125 octets.")
    def run25(t):
        expect_failure(t)
        t.frame(PING, b"\xfe" * 126)
        t.kill_after(1)

    ping_case(6, "Send ping with binary payload of 125 octets, send in octet-wise chops.", b"\xfe" * 125, chop=1)

    for num, payload in ((7, b""), (8, b"unsolicited pong payload")):
        @add("2.%d" % num, "Send unsolicited pong%s. Verify nothing is received. Clean close with normal code." %
             (" with payload" if payload else " without payload"), "Nothing.")
        def run_pong(t, payload=payload):
            t.expect([])
            t.expect_close(True, [NORMAL], True)
            t.frame(PONG, payload)
            t.close()
            t.close_after(1)

    @add("2.9", "Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.",
         "Nothing in reply to own Pong, but Pong with payload echo'ed in reply to Ping. "
         "Clean close with normal code.")
    def run29(t):
        t.expect([("pong", b"ping payload")])
        t.expect_close(True, [NORMAL], True)
        t.frame(PONG, b"unsolicited pong payload")
        t.frame(PING, b"ping payload")
        t.close_after(1)

    for num, chop in ((10, None), (11, 1)):
        @add("2.%d" % num, "Send 10 Pings with payload%s." % (". Send out octets in octet-wise chops" if chop else ""),
             "Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. but we check "
             "for this behaviour anyway. Clean close with normal code.")
        def run_pings(t, chop=chop):
            t.expect([("pong", b"payload-%d" % i) for i in range(10)])
            t.expect_close(True, [NORMAL], True)
            for i in range(10):
                t.frame(PING, b"payload-%d" % i, chop=chop)
            t.close_after(3)


def section3():
    fail_exp = ("Echo for first message is received, but then connection is failed immediately, since RSV must "
                "be 0, when no extension defining RSV meaning has been negotiated. The Pong is not received.")

    @add("3.1", "Send small text message with RSV = 1.",
         "The connection is failed immediately (1002/protocol error), since RSV must be 0, when no extension "
         "defining RSV meaning has been negotiated.")
    def run31(t):
        expect_failure(t)
        t.frame(TEXT, HELLO, rsv=1)
        t.kill_after(1)

    for num, rsv, how, chop, sync in ((2, 2, "", None, False), (3, 3, " Octets are sent in frame-wise chops.",
                                      None, True), (4, 4, " Octets are sent in octet-wise chops.", 1, False)):
        @add("3.%d" % num, "Send small text message, then send again with RSV = %d, then send Ping.%s" % (rsv, how),
             fail_exp)
        def run_rsv(t, rsv=rsv, chop=chop, sync=sync):
            expect_failure(t, ok=[("message", HELLO, False)], non_strict=[])
            t.frame(TEXT, HELLO, chop=chop, sync=sync)
            t.frame(TEXT, HELLO, rsv=rsv, chop=chop, sync=sync)
            t.frame(PING, chop=chop, sync=sync)
            t.kill_after(1)

    # 3.6: Autobahn's code sends a binary frame here although its description
    # says Ping; this follows the description.
    for num, what, opcode, payload, rsv in ((5, "small binary message", BINARY, SMALL_BINARY, 5),
                                            (6, "Ping", PING, HELLO, 6), (7, "Close", CLOSE, b"", 7)):
        @add("3.%d" % num, "Send %s with RSV = %d." % (what, rsv),
             "The connection is failed immediately, since RSV must be 0.")
        def run_bad(t, opcode=opcode, payload=payload, rsv=rsv):
            expect_failure(t)
            t.frame(opcode, payload, rsv=rsv)
            t.kill_after(1)


def section4():
    for sub, opcodes, kind in ((1, (3, 4, 5, 6, 7), "non-control"), (2, (11, 12, 13, 14, 15), "control")):
        for i, op in enumerate(opcodes, 1):
            payload = b"reserved opcode payload" if i in (2, 4, 5) else b""
            if i <= 2:
                @add("4.%d.%d" % (sub, i), "Send frame with reserved %s Opcode = %d%s." % (
                    kind, op, " and non-empty payload" if payload else ""),
                    "The connection is failed immediately.")
                def run_alone(t, op=op, payload=payload):
                    expect_failure(t)
                    t.frame(op, payload)
                    t.kill_after(1)
            else:
                @add("4.%d.%d" % (sub, i), "Send small text message, then send frame with reserved %s Opcode = %d%s, "
                     "then send Ping." % (kind, op, " and non-empty payload" if payload else ""),
                     "Echo for first message is received, but then connection is failed immediately, since "
                     "reserved opcode frame is used. A Pong is not received.")
                def run_after(t, op=op, payload=payload):
                    expect_failure(t, ok=[("message", HELLO, False)], non_strict=[])
                    t.frame(TEXT, HELLO)
                    t.frame(op, payload)
                    t.frame(PING)
                    t.kill_after(1)


CHOPS = (("", None, False), (" Octets are sent in frame-wise chops.", None, True),
         (" Octets are sent in octet-wise chops.", 1, False))


def section5():
    for num, opcode, name in ((1, PING, "Ping"), (2, PONG, "Pong")):
        @add("5.%d" % num, "Send %s fragmented into 2 fragments." % name,
             "Connection is failed immediately, since control message MUST NOT be fragmented.")
        def run_ctl(t, opcode=opcode):
            expect_failure(t)
            t.frame(opcode, b"fragment1", fin=False)
            t.frame(CONT, b"fragment2")
            t.kill_after(1)

    for k, (how, chop, sync) in enumerate(CHOPS):
        @add("5.%d" % (3 + k), "Send text Message fragmented into 2 fragments.%s" % how,
             "Message is processed and echo'ed back to us.")
        def run_frag(t, chop=chop, sync=sync):
            expect_echo(t, b"fragment1fragment2")
            t.frame(TEXT, b"fragment1", fin=False, chop=chop, sync=sync)
            t.frame(CONT, b"fragment2", chop=chop, sync=sync)
            t.close_after(1)

    for k, (how, chop, sync) in enumerate(CHOPS):
        @add("5.%d" % (6 + k), "Send text Message fragmented into 2 fragments, one ping with payload in-between.%s"
             % how, "A pong is received, then the message is echo'ed back to us.")
        def run_ping_between(t, chop=chop, sync=sync):
            t.expect([("pong", b"ping payload"), ("message", b"fragment1fragment2", False)])
            t.expect_close(True, [NORMAL], True)
            t.frame(TEXT, b"fragment1", fin=False, chop=chop, sync=sync)
            t.frame(PING, b"ping payload", chop=chop, sync=sync)
            t.frame(CONT, b"fragment2", chop=chop, sync=sync)
            t.close_after(1)

    for base, fin in ((9, True), (12, False)):
        for k, (how, chop, sync) in enumerate(CHOPS):
            @add("5.%d" % (base + k), "Send unfragmented Text Message after Continuation Frame with FIN = %s, where "
                 "there is nothing to continue, sent in one chop.%s" % (str(fin).lower(), how),
                 "The connection is failed immediately, since there is no message to continue.")
            def run_orphan(t, fin=fin, chop=chop, sync=sync):
                expect_failure(t)
                t.frame(CONT, b"non-continuation payload", fin=fin, chop=chop, sync=sync)
                t.frame(TEXT, HELLO, chop=chop, sync=sync)
                t.kill_after(1)

    @add("5.15", "Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where "
         "there is nothing to continue, then unfragmented Text Message, all sent in one chop.",
         "The connection is failed immediately, since there is no message to continue.")
    def run515(t):
        expect_failure(t, ok=[("message", b"fragment1fragment2", False)], non_strict=[])
        t.frame(TEXT, b"fragment1", fin=False)
        t.frame(CONT, b"fragment2")
        t.frame(CONT, b"fragment3", fin=False)
        t.frame(TEXT, b"fragment4")
        t.kill_after(1)

    for num, first_fin in ((16, False), (17, True)):
        @add("5.%d" % num, "Repeated 2x: Continuation Frame with FIN = %s (where there is nothing to continue), "
             "then text Message fragmented into 2 fragments." % str(first_fin).lower(),
             "The connection is failed immediately, since there is no message to continue.")
        def run_repeat(t, first_fin=first_fin):
            expect_failure(t)
            for _ in range(2):
                t.frame(CONT, b"fragment1", fin=first_fin)
                t.frame(TEXT, b"fragment2", fin=False)
                t.frame(CONT, b"fragment3")
            t.kill_after(1)

    @add("5.18", "Send text Message fragmented into 2 fragments, with both frame opcodes set to text, "
         "sent in one chop.", "The connection is failed immediately, since all data frames after the initial "
         "data frame must have opcode 0.")
    def run518(t):
        expect_failure(t)
        t.frame(TEXT, b"fragment1", fin=False)
        t.frame(TEXT, b"fragment2")
        t.kill_after(1)

    for num, sync in ((19, False), (20, True)):
        @add("5.%d" % num, "A fragmented text message is sent in multiple frames. After sending the first 2 frames "
             "of the text message, a Ping is sent. Then we wait 1s, then we send 2 more text fragments, another Ping "
             "and then the final text fragment. Everything is legal.%s" % (" All frames sent with SYNC = True."
                                                                          if sync else ""),
             "The peer immediately answers the first Ping before it has received the last text message fragment. "
             "The peer pong's back the Ping's payload exactly, and echo's the payload of the fragmented message "
             "back to us.")
        def run_pings_inside(t, sync=sync):
            frags = [b"fragment%d" % i for i in range(1, 6)]
            t.expect([("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("message", b"".join(frags), False)])
            t.expect_close(True, [NORMAL], True)
            t.frame(TEXT, frags[0], fin=False, sync=sync)
            t.frame(CONT, frags[1], fin=False, sync=sync)
            t.frame(PING, b"pongme 1!", sync=sync)

            def part2():
                t.frame(CONT, frags[2], fin=False, sync=sync)
                t.frame(CONT, frags[3], fin=False, sync=sync)
                t.frame(PING, b"pongme 2!", sync=sync)
                t.frame(CONT, frags[4], sync=sync)
                t.close_after(1)
            t.later(WAIT_SCALE, part2)


KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode("utf-8")


def utf8_valid(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def utf8_sequences():
    """The test strings of Autobahn 6.5 to 6.23 (from Markus Kuhn's UTF-8
    decoder stress test), as (group title, [(valid, bytes)])."""
    groups = []
    groups.append(("Some valid UTF-8 sequences", [(True, b"hello\x24world"), (True, b"hello\xc2\xa2world"),
                   (True, b"hello\xe2\x82\xacworld"), (True, b"hello\xf0\xa4\xad\xa2world"), (True, KOSME)]))
    groups.append(("All prefixes of a valid UTF-8 string that contains multi-byte code points",
                   [(utf8_valid(KOSME[:i]), KOSME[:i]) for i in range(1, len(KOSME) + 1)]))
    groups.append(("First possible sequence of a certain length", [(True, b"\x00"), (True, b"\xc2\x80"),
                   (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")]))
    groups.append(("First possible sequence length 5/6 (invalid codepoints)",
                   [(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")]))
    groups.append(("Last possible sequence of a certain length", [(True, b"\x7f"), (True, b"\xdf\xbf"),
                   (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")]))
    groups.append(("Last possible sequence length 4/5/6 (invalid codepoints)", [(False, b"\xf7\xbf\xbf\xbf"),
                   (False, b"\xfb\xbf\xbf\xbf\xbf"), (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]))
    groups.append(("Other boundary conditions", [(True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"),
                   (True, b"\xef\xbf\xbd"), (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")]))
    cont = [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80",
            b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xbf))]
    groups.append(("Unexpected continuation bytes", [(False, s) for s in cont]))
    lonely = [bytes(b for i in range(lo, hi) for b in (i, 0x20))
              for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd))]
    groups.append(("Lonely start characters", [(False, s) for s in lonely]))
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
               b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    groups.append(("Sequences with last continuation byte missing", [(False, s) for s in missing]))
    groups.append(("Concatenation of incomplete sequences", [(False, b"".join(missing))]))
    groups.append(("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]))
    groups.append(("Examples of an overlong ASCII character", [(False, s) for s in (
        b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf")]))
    groups.append(("Maximum overlong sequences", [(False, s) for s in (
        b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf")]))
    groups.append(("Overlong representation of the NUL character", [(False, s) for s in (
        b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80")]))
    single = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80",
              b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    groups.append(("Single UTF-16 surrogates", [(False, s) for s in single]))
    groups.append(("Paired UTF-16 surrogates", [(False, hi + lo) for hi in single[:4]
                                                for lo in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]))
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in b"\xf0\xf1\xf2\xf3\xf4":
        for z2 in b"\x8f\x9f\xaf\xbf":
            if z1 == 0xf4 and z2 != 0x8f:
                continue        # above U+10FFFF
            for z3 in b"\xbe\xbf":
                s = bytes((z1, z2, 0xbf, z3))
                if s not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):   # overlong
                    nonchars.append(s)
    groups.append(("Non-character code points (valid UTF-8)", [(True, s) for s in nonchars]))
    groups.append(("Unicode specials (i.e. replacement char)",
                   [(True, b"\xef\xbf" + bytes((b,))) for b in range(0xb9, 0xc0)]))
    return groups


def section6():
    @add("6.1.1", "Send text message of length 0.", "A message is echo'ed back to us (with empty payload).")
    def run611(t):
        expect_echo(t, b"")
        t.frame(TEXT)
        t.close_after(1)

    @add("6.1.2", "Send fragmented text message, 3 fragments each of length 0.",
         "A message is echo'ed back to us (with empty payload).")
    def run612(t):
        expect_echo(t, b"")
        t.frame(TEXT, fin=False)
        t.frame(CONT, fin=False)
        t.frame(CONT)
        t.close_after(1)

    @add("6.1.3", "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.",
         "A message is echo'ed back to us (with payload = payload of middle fragment).")
    def run613(t):
        expect_echo(t, b"middle frame payload")
        t.frame(TEXT, fin=False)
        t.frame(CONT, b"middle frame payload", fin=False)
        t.frame(CONT)
        t.close_after(1)

    split = len("Hello-µ@ßöä".encode("utf-8"))
    for num, desc, payload, frags in (
            (1, "in one fragment", HELLO_UTF8, None),
            (2, "in 2 fragments, fragmented on UTF-8 code point boundary", HELLO_UTF8, [split]),
            (3, "in fragments of 1 octet, resulting in frames ending on positions which are not code point ends",
             HELLO_UTF8, 1),
            (4, "in fragments of 1 octet, resulting in frames ending on positions which are not code point ends",
             KOSME, 1)):
        @add("6.2.%d" % num, "Send a valid UTF-8 text message %s. MESSAGE: %s" % (desc, payload.hex()),
             "The message is echo'ed back to us.")
        def run62(t, payload=payload, frags=frags):
            expect_echo(t, payload)
            if isinstance(frags, list):
                t.frame(TEXT, payload[:frags[0]], fin=False)
                t.frame(CONT, payload[frags[0]:])
            else:
                t.send_message(payload, frag_size=frags)
            t.close_after(1)

    bad = KOSME + b"\xed\xa0\x80" + b"edited"
    for num, frag in ((1, None), (2, 1)):
        @add("6.3.%d" % num, "Send invalid UTF-8 text message %s. MESSAGE: %s" % (
            "unfragmented" if frag is None else "in fragments of 1 octet, resulting in frames ending on positions "
            "which are not code point ends", bad.hex()),
            "The connection is failed immediately, since the payload is not valid UTF-8.")
        def run63(t, frag=frag):
            expect_failure(t, INVALID_PAYLOAD)
            t.send_message(bad, frag_size=frag)
            t.kill_after(1)

    fast = KOSME + b"\xf4\x90\x80\x80" + b"edited"     # invalid exactly on octet 12 (0x90)
    parts = {1: (KOSME, b"\xf4\x90\x80\x80", b"edited"), 2: (fast[:12], fast[12:13], fast[13:])}
    for num, how, which in ((1, "3 fragments (frames)", 1), (2, "3 fragments (frames), the 2nd only up to and "
                                                                  "including the octet making it invalid", 2),
                            (3, "3 chops of one frame", 1), (4, "3 chops of one frame, the 2nd only up to and "
                                                                "including the octet making it invalid", 2)):
        @add("6.4.%d" % num, "Send invalid UTF-8 text message in %s: first part valid, then wait, then the part "
             "making it invalid, then wait, then the rest. PARTS: %s" % (how, " ".join(p.hex() for p in parts[which])),
             "The first part is accepted, we expect to timeout on the first wait. The 2nd part should be rejected "
             "immediately (fail fast on UTF-8). If we timeout, we expect the connection is failed at least then, "
             "since the complete message payload is not valid UTF-8.")
        def run64(t, chops=num >= 3, p=parts[which]):
            t.expect([("timeout", "A")], [("timeout", "A"), ("timeout", "B")],
                     "The client failed the connection only when the message was complete, not as soon as the "
                     "invalid octet arrived (no fail-fast on invalid UTF-8%s)." % (
                         " inside a frame" if chops else ""))
            t.expect_close(False, [INVALID_PAYLOAD], False)
            if chops:
                t.write(frame_head(TEXT, len(fast)) + p[0])
            else:
                t.frame(TEXT, p[0], fin=False)

            def part2():
                t.received.append(("timeout", "A"))
                if chops:
                    t.write(p[1])
                else:
                    t.frame(CONT, p[1], fin=False)
                t.later(WAIT_SCALE, part3)

            def part3():
                t.received.append(("timeout", "B"))
                if chops:
                    t.write(p[2])
                else:
                    t.frame(CONT, p[2])
                t.kill_after(1)
            t.later(WAIT_SCALE, part2)

    for i, (title, tests) in enumerate(utf8_sequences(), 5):
        for j, (valid, payload) in enumerate(tests, 1):
            @add("6.%d.%d" % (i, j), "%s: send a text message with payload which is %s UTF-8 in one fragment. "
                 "Payload: 0x%s" % (title, "valid" if valid else "not valid", payload.hex()),
                 "The message is echo'ed back to us." if valid else
                 "The connection is failed immediately, since the payload is not valid UTF-8.")
            def run6x(t, valid=valid, payload=payload):
                if valid:
                    expect_echo(t, payload)
                else:
                    expect_failure(t, INVALID_PAYLOAD)
                t.frame(TEXT, payload)
                t.kill_after(0.5)


def section7():
    def close_case(cid, desc, expectation, codes, clean, wrong_code_fails=True, post=None):
        def deco(run):
            def wrapped(t):
                t.suppress_close = True
                t.expect([])
                t.expect_close(True, codes, clean)
                run(t)
                t.kill_after(1)
            CASES.append(Case(cid, desc, expectation, wrapped, post=post, wrong_code_fails=wrong_code_fails))
        return deco

    @add("7.1.1", "Send a message followed by a close frame",
         "Echoed message followed by clean close with normal code.", wrong_code_fails=True)
    def run711(t):
        expect_echo(t, b"Hello World!")
        t.frame(TEXT, b"Hello World!")
        t.kill_after(1)

    @close_case("7.1.2", "Send two close frames", "Clean close with normal code. Second close frame ignored.",
                [NORMAL], True)
    def run712(t):
        t.close()
        t.frame(CLOSE)

    @close_case("7.1.3", "Send a ping after close message", "Clean close with normal code, no pong.", [NORMAL], True)
    def run713(t):
        t.close()
        t.frame(PING)

    @close_case("7.1.4", "Send text message after sending a close frame",
                "Clean close with normal code. Text message ignored.", [NORMAL], True)
    def run714(t):
        t.close()
        t.frame(TEXT, b"Hello World!")

    @close_case("7.1.5", "Send message fragment1 followed by close then fragment", "Clean close with normal code.",
                [NORMAL], True)
    def run715(t):
        t.frame(TEXT, b"fragment1", fin=False)
        t.close()
        t.frame(CONT, b"fragment2")

    def informational_716(t):
        if t.behavior == OK:
            t.result = "Text message was processed before close."
        elif t.behavior == NON_STRICT:
            t.result = "Close was processed before text message could be returned."
        else:
            t.result = "Before the close the client sent back: %s." % ", ".join(
                "%s of %d octets" % ("binary" if e[2] else "text", len(e[1])) if e[0] == "message" else e[0]
                for e in t.received)
        t.behavior = t.behavior_close = INFORMATIONAL

    @close_case("7.1.6", "Send 256K message followed by close then a ping",
                "Case outcome depends on implementation defined close behavior. Message and close frame are sent "
                "back to back. If the close frame is processed before the text message write is complete (as can "
                "happen in asynchronous processing models) the close frame is processed first and the text message "
                "may not be received or may only be partially received.", [NORMAL], True,
                wrong_code_fails=False, post=informational_716)
    def run716(t):
        t.expect([("message", b"Hello World!", False)], [])
        t.frame(TEXT, b"BAsd7&jh23", length=256 << 10)
        t.frame(TEXT, b"Hello World!")
        t.close()
        t.frame(PING)

    for num, desc, exp, code, reason, codes, clean in (
            (1, "Send a close frame with payload length 0 (no close code, no close reason)",
             "Clean close with normal code.", None, None, [NORMAL], True),
            (2, "Send a close frame with payload length 1", "Clean close with protocol error or drop TCP.",
             None, b"a", [PROTOCOL_ERROR], False),
            (3, "Send a close frame with payload length 2 (regular close with a code)",
             "Clean close with normal code.", NORMAL, None, [NORMAL], True),
            (4, "Send a close frame with close code and close reason", "Clean close with normal code.",
             NORMAL, b"Hello World!", [NORMAL], True),
            (5, "Send a close frame with close code and close reason of maximum length (123)",
             "Clean close with normal code.", NORMAL, b"*" * 123, [NORMAL], True),
            (6, "Send a close frame with close code and close reason which is too long (124) - total frame "
             "payload 126 octets", "Clean close with protocol error code or dropped TCP connection.",
             NORMAL, b"*" * 124, [PROTOCOL_ERROR], False)):
        @close_case("7.3.%d" % num, desc, exp, codes, clean)
        def run73(t, code=code, reason=reason):
            t.close_frame(code, reason)

    @close_case("7.5.1", "Send a close frame with invalid UTF8 payload",
                "Clean close with protocol error or invalid utf8 code or dropped TCP.",
                [PROTOCOL_ERROR, INVALID_PAYLOAD], False)
    def run751(t):
        t.close_frame(NORMAL, KOSME + b"\xed\xa0\x80" + b"edited")

    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    for i, code in enumerate(valid, 1):
        @close_case("7.7.%d" % i, "Send close with valid close code %d" % code,
                    "Clean close with normal or echoed code", [NORMAL, code], True)
        def run77(t, code=code):
            t.close_frame(code)

    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
    for i, code in enumerate(invalid, 1):
        @close_case("7.9.%d" % i, "Send close with invalid close code %d" % code,
                    "Clean close with protocol error code or drop TCP", [PROTOCOL_ERROR], False)
        def run79(t, code=code):
            t.close_frame(code)

    def informational(t):
        t.behavior = t.behavior_close = INFORMATIONAL
        t.result = "Actual events are undefined by the spec."

    for i, code in enumerate((5000, 65535), 1):
        @close_case("7.13.%d" % i, "Send close with close code %d" % code, "Actual events are undefined by the spec.",
                    [NORMAL, code, PROTOCOL_ERROR], False, wrong_code_fails=False, post=informational)
        def run713x(t, code=code):
            t.close_frame(code)


def section9():
    def size_name(n):
        return "%dk" % (n >> 10) if n < 1 << 20 else "%dM" % (n >> 20)

    def big_message_case(cid, desc, binary, payload, waitsecs, send):
        def run(t):
            t.behavior = FAILED
            t.expect_close(True, [NORMAL], True)
            t.result = "Did not receive message within %d seconds." % waitsecs
            send(t)
            t.close_after(waitsecs)

        def on_message(t, msg, got_binary):
            if got_binary != binary:
                t.result = "Expected %s message with payload, but got %s." % (
                    "binary" if binary else "text", "binary" if got_binary else "text")
            elif len(msg) != len(payload):
                t.result = "Expected message with payload of length %d, but got %d." % (len(payload), len(msg))
            elif msg != payload:
                t.result = "Echo'ed payload of length %d differs from what was sent." % len(msg)
            else:
                t.behavior = OK
                t.result = "Received message of length %d." % len(msg)
            t.close()
        kind = "binary" if binary else "text"
        CASES.append(Case(cid, desc, "Receive echo'ed %s message (with payload as sent)." % kind, run,
                          on_message=on_message))

    wait = TIMER_CAP           # Autobahn: 10 s to 1000 s
    for sub, binary in ((1, False), (2, True)):
        for i, n in enumerate([64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20], 1):
            n //= SIZE_DIVISOR
            op = BINARY if binary else TEXT
            payload = repeat_to(b"\xfe" if binary else b"BAsd7&jh23", n)
            big_message_case("9.%d.%d" % (sub, i), "Send %s message with payload of length %s." % (
                "binary" if binary else "text", size_name(n)), binary, payload, wait,
                lambda t, op=op, payload=payload: t.frame(op, payload))

    for sub, binary in ((3, False), (4, True)):
        n = (4 << 20) // SIZE_DIVISOR
        payload = (b"\xfe" if binary else b"*") * n
        for i, frag in enumerate([64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20], 1):
            frag //= SIZE_DIVISOR
            big_message_case("9.%d.%d" % (sub, i), "Send fragmented %s message with message payload of length %s. "
                             "Sent out in fragments of %d." % ("binary" if binary else "text", size_name(n), frag),
                             binary, payload, wait,
                             lambda t, payload=payload, frag=frag, binary=binary:
                             t.send_message(payload, binary, frag_size=frag))

    for sub, binary in ((5, False), (6, True)):
        n = (1 << 20) // SIZE_DIVISOR
        payload = repeat_to(b"\xfe" if binary else b"BAsd7&jh23", n)
        op = BINARY if binary else TEXT
        for i, chop in enumerate([64, 128, 256, 512, 1024, 2048], 1):
            big_message_case("9.%d.%d" % (sub, i), "Send %s message with payload of length %s. Sent out data in "
                             "chops of %d octets." % ("binary" if binary else "text", size_name(n), chop),
                             binary, payload, wait,
                             lambda t, op=op, payload=payload, chop=chop: t.frame(op, payload, chop=chop))

    for sub, binary in ((7, False), (8, True)):
        for i, (size, count) in enumerate([(0, 1000), (16, 1000), (64, 1000), (256, 1000), (1024, 1000),
                                           (4096, 1000)], 1):
            count //= RTT_COUNT_DIVISOR
            rtt_case(sub, i, binary, size, count)


def rtt_case(sub, i, binary, size, count):
    kind = "binary" if binary else "text"
    payload = (b"\xfe" if binary else b"*") * size
    waitsecs = TIMER_CAP

    def send_one(t):
        t.frame(BINARY if binary else TEXT, payload)
        t.vars["count"] += 1

    def run(t):
        t.behavior = FAILED
        t.expect_close(True, [NORMAL], True)
        t.vars["count"] = 0
        give_up_after(t, waitsecs, count)
        send_one(t)

    def on_message(t, msg, got_binary):
        if got_binary != binary or msg != payload:
            t.behavior = FAILED
            t.result = "Echo'ed message type or payload differs from what I sent (got binary = %s, payload " \
                       "length = %d)." % (got_binary, len(msg))
            t.close()
        elif t.vars["count"] < count:
            send_one(t)
        else:
            t.behavior = OK
            t.result = "Ok, received all echo'ed messages in time."
            t.close()
    CASES.append(Case("9.%d.%d" % (sub, i), "Send %d %s messages of payload size %d to measure implementation/"
                      "network RTT (round trip time) / latency." % (count, kind, size),
                      "Receive echo'ed %s messages (with payload as sent). Timeout case after %d secs." % (
                          kind, waitsecs), run, on_message=on_message))


def give_up_after(t, waitsecs, count):
    """The result of a case that sends `count` messages one echo at a time,
    until the echoes are all back: why it failed, if it does."""
    t.result = None           # judge() tells how far it got
    t.vars["total"] = count

    def timeout():
        t.result = "Case did not finish within %d seconds (message %d of %d sent)." % (
            waitsecs, t.vars["count"], count)
        t.close()
    t.later(waitsecs, timeout)


# --- sections 12 and 13: permessage-deflate -------------------------------------

def make_test_data():
    """Stand-ins for Autobahn's compression test files, made here from a fixed
    seed: (key, description, binary, data). Text data is a str (messages are
    cut by characters, as Autobahn does), binary data bytes."""
    rnd = random.Random(7692)
    words = ("Faust Gretchen Mephistopheles Himmel Erde Geist Nacht Welt Leben Liebe Wissen Teufel Herz Zeit "
             "ich du er sie wir und oder aber doch nicht mehr schön süß Größe über Mädchen früh spät").split()
    records = [{"id": i, "name": rnd.choice(words), "score": round(rnd.random() * 1000, 3),
                "tags": rnd.sample(words, 3), "active": rnd.random() < 0.5, "note": "ünïcödé ✓ %d" % i}
               for i in range(400)]
    json_text = json.dumps(records, ensure_ascii=False, indent=1)
    bmp = bytearray()
    for y in range(256):
        for x in range(128):
            bmp.append((x * 2 + y + (x * y >> 6)) & 0xff if rnd.random() < 0.9 else rnd.randrange(256))
    faust = " ".join(rnd.choice(words) for _ in range(6000)).encode("utf-8")
    rows = "".join('<tr class="r%d"><td>%s</td><td>%d</td><td><a href="/item/%d">%s</a></td></tr>\n' % (
        i % 2, rnd.choice(words), rnd.randrange(10 ** 6), i, rnd.choice(words)) for i in range(500))
    html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Daten – Übersicht</title></head>" \
           "<body><table>\n%s</table></body></html>\n" % rows
    pdf = bytearray(b"%PDF-1.4\n")
    while len(pdf) < 48000:
        pdf += b"%d 0 obj << /Length %d >> stream\n" % (len(pdf), rnd.randrange(4000))
        pdf += bytes(rnd.randrange(256) for _ in range(rnd.randrange(64, 512)))
        pdf += b"\nendstream endobj\n"
    return [("json_data1", "Large JSON data file (synthetic)", False, json_text),
            ("lena512", "Bitmap image (synthetic gradient)", True, bytes(bmp)),
            ("gutenberg_faust", "Human readable text, German (synthetic)", True, faust),
            ("html_data1", "Large HTML file (synthetic)", False, html),
            ("ooms", "PDF-like binary file (synthetic)", True, bytes(pdf))]


MSG_SIZES = [(16, 0), (64, 0), (256, 0), (1024, 0), (4096, 0), (8192, 0), (16384, 0), (32768, 0), (65536, 0),
             (131072, 0), (8192, 256), (16384, 256), (32768, 256), (65536, 256), (131072, 256), (131072, 1024),
             (131072, 4096), (131072, 32768)]


def deflate_case(cid, desc, binary, data, size, autofrag, accept):
    count, waitsecs = DEFLATE_COUNT, TIMER_CAP

    def send_one(t):
        ptr = t.vars["ptr"]
        end = (ptr + size) % len(data)
        msg = data[ptr:end] if end > ptr else data[ptr:] + data[:end]
        t.vars["ptr"] = end
        t.vars["sent"] = msg if binary else msg.encode("utf-8")
        t.vars["count"] += 1
        t.send_message(t.vars["sent"], binary, frag_size=autofrag)

    def run(t):
        t.expect_close(True, [NORMAL], True)
        if t.deflate is None:
            t.behavior = UNIMPLEMENTED
            t.result = "permessage-deflate was not agreed: the client made no offer this case's server accepts " \
                       "(%s)." % accept.__doc__
            t.close()
            return
        t.behavior = FAILED
        t.vars.update(ptr=0, count=0)
        give_up_after(t, waitsecs, count)
        send_one(t)

    def on_message(t, msg, got_binary):
        if got_binary != binary or msg != t.vars["sent"]:
            t.behavior = FAILED
            t.result = "Echo'ed message differs from what I sent (got binary %s, length %d; sent binary %s, " \
                       "length %d)." % (got_binary, len(msg), binary, len(t.vars["sent"]))
            t.close()
        elif t.vars["count"] < count:
            send_one(t)
        else:
            t.behavior = OK
            t.result = "Ok, received all echo'ed messages in time."
            t.close()
    CASES.append(Case(cid, desc, "Receive echo'ed messages (with payload as sent). Timeout case after %d secs." %
                      waitsecs, run, on_message=on_message, accept=accept))


def section12_13():
    datasets = make_test_data()
    for j, (_, title, binary, data) in enumerate(datasets, 1):
        for i, (size, frag) in enumerate(MSG_SIZES, 1):
            size, frag = size // SIZE_DIVISOR, frag // SIZE_DIVISOR
            deflate_case("12.%d.%d" % (j, i), "%s: send %d compressed messages each of payload size %d, "
                         "auto-fragment to %d octets. Use default permessage-deflate offer." % (
                             title, DEFLATE_COUNT, size, frag), binary, data, size, frag, ACCEPT1)
    _, title, binary, data = datasets[0]
    for j, accept in enumerate([ACCEPT1, ACCEPT2, ACCEPT3, ACCEPT4, ACCEPT5, ACCEPT6, accept7], 1):
        for i, (size, frag) in enumerate(MSG_SIZES, 1):
            size, frag = size // SIZE_DIVISOR, frag // SIZE_DIVISOR
            deflate_case("13.%d.%d" % (j, i), "%s: send %d compressed messages each of payload size %d, "
                         "auto-fragment to %d octets; %s" % (title, DEFLATE_COUNT, size, frag, accept.__doc__),
                         binary, data, size, frag, accept)


def case_key(cid):
    return tuple(int(x) for x in cid.split("."))


for build in (section1, section2, section3, section4, section5, section6, section7, section9, section12_13):
    build()
# numbered as Autobahn numbers them: case N is the N-th id in id order
CASES.sort(key=lambda c: case_key(c.id))


# --- the server -------------------------------------------------------------------


class Server:
    def __init__(self, cases, report_path):
        self.cases = cases
        self.by_id = {c.id: c for c in cases}
        self.report_path = report_path
        self.results = {}     # agent -> case id -> result

    def find(self, ref):
        if ref in self.by_id:
            return self.by_id[ref]
        if ref.isdigit() and 1 <= int(ref) <= len(self.cases):
            return self.cases[int(ref) - 1]
        return None

    def store(self, run, was_clean):
        self.results.setdefault(run.agent, {})[run.case.id] = {
            "behavior": run.behavior, "behaviorClose": run.behavior_close, "verdict": run.verdict(),
            "result": run.result, "resultClose": run.result_close,
            "description": run.case.description, "expectation": run.case.expectation,
            "expected": {k: [event_json(x) for x in e] for k, e in run.expected.items()},
            "received": [event_json(x) for x in run.received[:20]],
            "expectedClose": run.expected_close, "closedByMe": run.closed_by_me,
            "failedByMe": run.failed_by_me, "wasClean": was_clean,
            "localCloseCode": run.local_code, "remoteCloseCode": run.remote_code,
            "remoteCloseReason": run.remote_reason,
            "extension": response_header(run.deflate.params) if run.deflate else None,
            "duration": int(round(1000 * (time.monotonic() - run.started))),
            "trace": run.trace,
        }

    def report(self):
        return {agent: {cid: res[cid] for cid in sorted(res, key=case_key)} for agent, res in self.results.items()}

    def write_report(self):
        if self.report_path:
            with open(self.report_path + ".tmp", "w") as f:
                json.dump(self.report(), f, indent=1, sort_keys=True)
            os.replace(self.report_path + ".tmp", self.report_path)

    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                headers[k] = headers[k] + ", " + v.strip() if k in headers else v.strip()
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query))
        if "websocket" not in headers.get("upgrade", "").lower():
            await self.plain_http(writer, method, url.path)
            return
        problem = self.check_handshake(method, headers)
        case = self.find(query.get("case", "")) if url.path == "/runCase" else None
        if problem is None and url.path == "/runCase" and case is None:
            problem = "no such case: %r" % query.get("case")
        if problem:
            body = (problem + "\n").encode()
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                         + body)
            writer.close()
            return
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest()).decode()
        deflate = None
        if case is not None and case.accept is not None:
            params = case.accept(parse_offers(headers.get("sec-websocket-extensions")))
            deflate = Deflate(params) if params else None
        response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
                   "Sec-WebSocket-Accept: %s\r\n" % accept
        if deflate:
            response += "Sec-WebSocket-Extensions: %s\r\n" % response_header(deflate.params)
        writer.write((response + "\r\n").encode())
        if case is not None:
            run = Run(self, case, query.get("agent", "unknown"), reader, writer, deflate)
            run.note("handshake: offer %r, agreed %r" % (headers.get("sec-websocket-extensions"),
                                                         response_header(deflate.params) if deflate else None))
            await run.run()
        else:
            await self.utility(reader, writer, url.path, query)

    @staticmethod
    def check_handshake(method, headers):
        # RFC 6455 4.1 (client requirements), as 4.2.1 has the server check them
        if method != "GET":
            return "method must be GET"
        if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
            return "Connection must include Upgrade"
        if headers.get("sec-websocket-version") != "13":
            return "Sec-WebSocket-Version must be 13"
        try:
            if len(base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)) != 16:
                return "Sec-WebSocket-Key must be 16 octets in base64"
        except ValueError:
            return "Sec-WebSocket-Key is not base64"
        if "host" not in headers:
            return "Host is missing"
        return None

    async def utility(self, reader, writer, path, query):
        """The endpoints around the cases: one text message (or none), then a
        normal close."""
        text = None
        if path == "/getCaseCount":
            text = str(len(self.cases))
        elif path == "/getCaseInfo":
            c = self.find(query.get("case", ""))
            text = json.dumps({"id": c.id, "description": c.description} if c else None)
        elif path == "/getCaseStatus":
            c = self.find(query.get("case", ""))
            res = self.results.get(query.get("agent", ""), {}).get(c.id if c else "")
            text = json.dumps({"behavior": res["behavior"] if res else None})
        elif path == "/updateReports":
            self.write_report()
        if text is not None:
            writer.write(frame(TEXT, text.encode()))
        writer.write(frame(CLOSE, struct.pack("!H", NORMAL)))
        try:
            # wait for the client's close frame (any frame ends it), then close
            await asyncio.wait_for(reader.read(1), 2)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()

    async def plain_http(self, writer, method, path):
        if method == "GET" and path == "/report":
            body, status = json.dumps(self.report(), indent=1, sort_keys=True).encode(), "200 OK"
        else:
            body, status = b"WebSocket endpoints: /getCaseCount /getCaseInfo /runCase /updateReports\n", \
                "404 Not Found"
        writer.write(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n" % (status, len(body))).encode() + body)
        await writer.drain()
        writer.close()


def select(patterns):
    """Autobahn's case patterns: "1.*", "6.4.1", "12.1.*" ..."""
    if not patterns:
        return CASES
    return [c for c in CASES if matches(c.id, patterns)]


def matches(cid, patterns):
    return any(fnmatch.fnmatchcase(cid, p.strip()) for p in (patterns or "").split(",") if p.strip())


def summarize(path, agent, tolerate):
    """Prints an agent's results from a report: the verdicts per section,
    then every case that is not OK with why, FAILED ones with what the client
    did. Returns the number of FAILED cases outside the tolerated patterns."""
    with open(path) as f:
        cases = json.load(f).get(agent, {})
    verdicts = (OK, NON_STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED)
    sections = {}
    for cid, r in cases.items():
        sections.setdefault(cid.split(".")[0], {v: 0 for v in verdicts})[r["verdict"]] += 1
    print("%-8s %s" % ("section", " ".join("%13s" % v for v in verdicts)))
    for sec in sorted(sections, key=int):
        print("%-8s %s" % (sec, " ".join("%13d" % sections[sec][v] for v in verdicts)))
    print("%-8s %s" % ("total", " ".join("%13d" % sum(c[v] for c in sections.values()) for v in verdicts)))
    failed = 0
    ordered = sorted(cases.items(), key=lambda x: case_key(x[0]))
    for verdict in (NON_STRICT, UNIMPLEMENTED, INFORMATIONAL):
        groups = []       # runs of one subsection with one reason: one line each
        for cid, r in ordered:
            if r["verdict"] != verdict:
                continue
            line = "%s (close: %s, client's close code %s)" % (
                r["result"] if r["behavior"] != OK else r["resultClose"], r["behaviorClose"], r["remoteCloseCode"])
            sub = cid.rsplit(".", 1)[0]
            if groups and groups[-1][1] == sub and groups[-1][2] == line:
                groups[-1][0].append(cid)
            else:
                groups.append(([cid], sub, line))
        if groups:
            print("\n%s:" % verdict)
        for ids, _, line in groups:
            print("  %-8s %s" % (", ".join(ids) if len(ids) <= 3 else "%s..%s (%d cases)" % (
                ids[0], ids[-1], len(ids)), line))
    for cid, r in ordered:
        if r["verdict"] != FAILED:
            continue
        tolerated = matches(cid, tolerate)
        failed += not tolerated
        print("\nFAILED%s %s: %s (close: %s: %s; client's close code %s)" % (
            " [tolerated]" if tolerated else "", cid, r["result"], r["behaviorClose"], r["resultClose"],
            r["remoteCloseCode"]))
        print("  case: %s" % r["description"])
        print("  expected %s, got %s" % (json.dumps(r["expected"]), json.dumps(r["received"])))
        for line in r["trace"]:
            print("  | " + line)
    return failed


async def serve(args):
    server = Server(select(args.cases), args.report)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", args.port, limit=1 << 16)
    print(srv.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()
    server.write_report()


def event_json(event):
    """A received/expected event for the JSON report: payloads as text where
    they are UTF-8 and short, else their length and first octets in hex."""
    out = []
    for x in event:
        if isinstance(x, bytes):
            out.append(x.decode("utf-8") if len(x) <= 64 and utf8_valid(x) else "<%d octets: %s>" % (
                len(x), x[:16].hex()))
        else:
            out.append(x)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", help="write the JSON report here (on /updateReports and at exit)")
    ap.add_argument("--cases", help="comma-separated case patterns (default: all)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--deflate-rules", choices=("autobahn", "rfc7692"), default="autobahn",
                    help="rfc7692: ask for client_no_context_takeover even when the offer lacks it")
    ap.add_argument("--summarize", metavar="REPORT", help="print AGENT's results from REPORT instead of serving; "
                    "exit status 1 when a case FAILED")
    ap.add_argument("--agent", default="lurl")
    ap.add_argument("--tolerate", help="with --summarize: case patterns whose failures do not count")
    args = ap.parse_args()
    if args.summarize:
        sys.exit(1 if summarize(args.summarize, args.agent, args.tolerate) else 0)
    global NCT_NEEDS_OFFER
    NCT_NEEDS_OFFER = args.deflate_rules == "autobahn"
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
