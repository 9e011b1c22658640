// What undici_get_load.mjs and undici_handshakes.mjs share: an undici Pool
// of BENCH_CONNS connections makes BENCH_REQUESTS requests of BENCH_URL from
// BENCH_CONNS concurrent loops, every body consumed and its length
// (BENCH_BYTES) checked. With BENCH_CAFILE (an https URL) the server is
// verified against that CA. Prints requests and seconds (the load phase only).
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

export async function load({ headers } = {}) {
  const env = process.env;
  const total = Number(env.BENCH_REQUESTS);
  const conns = Number(env.BENCH_CONNS);
  const len = Number(env.BENCH_BYTES);
  const u = new URL(env.BENCH_URL);
  const pool = new Pool(u.origin, {
    connections: conns, keepAliveTimeout: 300e3, keepAliveMaxTimeout: 600e3,
    ...(env.BENCH_CAFILE ? { connect: { ca: readFileSync(env.BENCH_CAFILE) } } : {}),
  });
  const path = u.pathname + u.search;

  async function loop(n) {
    for (let i = 0; i < n; i++) {
      const { statusCode, body } = await pool.request({ path, method: 'GET', headers });
      let got = 0;
      for await (const chunk of body) got += chunk.length;
      if (statusCode !== 200 || got !== len) throw new Error(`status ${statusCode}, ${got} bytes`);
    }
    return n;
  }

  const t0 = process.hrtime.bigint();
  const loops = [];
  for (let t = 0; t < conns; t++) loops.push(loop(Math.floor(total / conns) + (t < total % conns ? 1 : 0)));
  const done = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await pool.close();
  if (done !== total) throw new Error(`${done} of ${total} done`);
  console.log(JSON.stringify({ requests: done, seconds }));
}
