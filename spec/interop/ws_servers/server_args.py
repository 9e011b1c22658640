"""The command line both Python WebSocket echo servers take, and the TLS
context it asks for: PORT [--cert FILE --key FILE] [--no-deflate]."""

import argparse
import ssl


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--no-deflate", action="store_true")
    return p.parse_args()


def tls_context(args):
    """A server context for --cert/--key, or None for plain ws://."""
    if not args.cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    return context
