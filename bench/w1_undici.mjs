// W1/W2/W5/W6/W7 peer: undici Pool with CONNS connections, TOTAL requests
// from CONNS concurrent loops, every body consumed and its length checked.
// With CAFILE (W5, an https URL) the server is verified against that CA.
// With close (W6, W7) every request is on a new connection: it carries
// "connection: close", which makes undici close it after the response.
// undici keeps TLS sessions for resumption (connect.maxCachedSessions, 100
// by default).
//   node bench/w1_undici.mjs URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close]]
// Prints "requests=N seconds=S" (the load phase only).
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

const usage = 'usage: w1_undici.mjs URL [TOTAL] [CONNS] [BODY_LEN] [CAFILE [close]]';
const [url, totalArg, connsArg, lenArg, cafile, mode] = process.argv.slice(2);
if (!url || (mode !== undefined && mode !== 'close')) { console.error(usage); process.exit(2); }
const TOTAL = Number(totalArg ?? 200000);
const CONNS = Number(connsArg ?? 64);
const LEN = Number(lenArg ?? 1024);
const u = new URL(url);
const pool = new Pool(u.origin, {
  connections: CONNS, keepAliveTimeout: 300e3, keepAliveMaxTimeout: 600e3,
  ...(cafile ? { connect: { ca: readFileSync(cafile) } } : {}),
});
const path = u.pathname + u.search;
const headers = mode === 'close' ? { connection: 'close' } : undefined;

async function loop(n) {
  for (let i = 0; i < n; i++) {
    const { statusCode, body } = await pool.request({ path, method: 'GET', headers });
    let got = 0;
    for await (const chunk of body) got += chunk.length;
    if (statusCode !== 200 || got !== LEN) throw new Error(`status ${statusCode}, ${got} bytes`);
  }
  return n;
}

const t0 = process.hrtime.bigint();
const loops = [];
for (let t = 0; t < CONNS; t++) loops.push(loop(Math.floor(TOTAL / CONNS) + (t < TOTAL % CONNS ? 1 : 0)));
const done = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
await pool.close();
if (done !== TOTAL) { console.error(`${done} of ${TOTAL} done`); process.exit(1); }
console.log(`requests=${done} seconds=${seconds.toFixed(4)}`);
