#!/usr/bin/python3
"""A tiny authoritative DNS server on loopback UDP for lurl's resolver spec
(spec/loopback/ares_spec.lua) and bench (bench/dns_resolvers.sh).

    dns_server.py [--host 127.0.0.1] [--port 0] [--delay MS]

prints the port it listens on and its pid (one line), then answers every name:
  nx.*        NXDOMAIN
  drop.*      never answered (a server that does not answer)
  v6.*        AAAA ::1 only
  both.*      A 127.0.0.1 and AAAA ::1
  anything    A 127.0.0.1
each answer after --delay milliseconds, all of them concurrently. It stops
on SIGTERM, or after --lifetime seconds (so a test that dies does not leave
it running).
"""
import argparse
import asyncio
import os
import signal
import socket

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord


def answer(request):
    reply = request.reply()
    name = str(request.q.qname).lower()
    label = name.split(".", 1)[0]
    if label == "nx":
        reply.header.rcode = RCODE.NXDOMAIN
        return reply
    qtype = request.q.qtype
    if qtype == QTYPE.A and label != "v6":
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
    elif qtype == QTYPE.AAAA and label in ("v6", "both"):
        reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA("::1"), ttl=60))
    return reply


class Server(asyncio.DatagramProtocol):
    def __init__(self, delay):
        self.delay = delay

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            request = DNSRecord.parse(data)
        except Exception:  # not DNS: a real server drops it too
            return
        if str(request.q.qname).lower().startswith("drop."):
            return
        reply = answer(request).pack()
        loop = asyncio.get_running_loop()
        loop.call_later(self.delay, self.transport.sendto, reply, addr)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0, help="milliseconds")
    parser.add_argument("--lifetime", type=float, default=600, help="seconds")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Server(args.delay / 1000), local_addr=(args.host, args.port))
    # thousands of queries arrive at once: room for them all (up to rmem_max)
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    print(transport.get_extra_info("sockname")[1], os.getpid(), flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    try:
        await asyncio.wait_for(stop, args.lifetime)
    except asyncio.TimeoutError:
        pass
    transport.close()


asyncio.run(main())
