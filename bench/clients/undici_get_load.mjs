// undici: BENCH_REQUESTS GETs over a Pool of BENCH_CONNS keep-alive
// connections (undici_pool.mjs). Prints requests and seconds.
import { load } from './undici_pool.mjs';

await load();
