# aiohttp: aiohttp_get_load.py with every GET on a new TLS connection
# (TCPConnector(force_close=True)), BENCH_CONNS at a time, the server
# verified against BENCH_CAFILE. Prints requests, seconds and bytes.
import asyncio

import aiohttp_get_load

asyncio.run(aiohttp_get_load.load(**aiohttp_get_load.params(), close=True))
