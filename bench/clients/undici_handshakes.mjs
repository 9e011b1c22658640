// undici: BENCH_REQUESTS GETs, each on a new TLS connection: every request
// carries "connection: close", which makes undici close it after the
// response. undici keeps TLS sessions for resumption
// (connect.maxCachedSessions, 100 by default). Prints requests and seconds.
import { load } from './undici_pool.mjs';

await load({ headers: { connection: 'close' } });
