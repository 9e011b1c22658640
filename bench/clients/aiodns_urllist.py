# aiohttp with aiodns: aiohttp_urllist.py with TCPConnector(resolver=
# AsyncResolver()), c-ares through aiodns (Debian's python3-aiodns) instead
# of getaddrinfo on threads. aiohttp 3.8 does not pick it by itself.
import asyncio
import sys

import aiohttp_urllist
from aiohttp.resolver import AsyncResolver

try:
    import aiodns  # noqa: F401 (AsyncResolver needs it)
except ImportError:
    print("aiodns not installed (Debian package python3-aiodns)", file=sys.stderr)
    sys.exit(77)


async def main():
    await aiohttp_urllist.check(AsyncResolver())

asyncio.run(main())
