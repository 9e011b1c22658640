// node's ws (Debian's node-ws, /usr/share/nodejs/ws): BENCH_REQUESTS
// WebSocket messages echoed by the server at BENCH_URL, over BENCH_CONNS
// connections (perMessageDeflate: false), BENCH_WINDOW messages in flight on
// each: it sends that many, then one more for each echo it receives. Every
// message is BENCH_FILE's bytes, as text or binary (BENCH_MESSAGE), and every
// echo must be of that type and equal to it (ws checks text as UTF-8 and
// hands it over as a Buffer). Prints requests (messages), seconds (the echo
// phase only, connecting included) and the RSS after the first tenth of the
// messages and at the end (rss_warm, rss_end, bytes).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let WebSocket;
try {
  WebSocket = require(process.env.NODE_WS || '/usr/share/nodejs/ws');
} catch (e) {
  console.error(`node ws not installed (Debian package node-ws): ${e.message}`);
  process.exit(77);
}

const env = process.env;
const total = Number(env.BENCH_REQUESTS);
const conns = Number(env.BENCH_CONNS);
const window = Number(env.BENCH_WINDOW || 1);
const binary = env.BENCH_MESSAGE === 'binary';
const payload = readFileSync(env.BENCH_FILE);
// text goes out as a string (a text frame), binary as the Buffer
const out = binary ? payload : payload.toString();
const warmAt = Math.max(1, Math.floor(total / 10));
let received = 0;
let rssWarm = null;

// connection t's share of the messages, window at a time
function echo(t, n) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(env.BENCH_URL, { perMessageDeflate: false, maxPayload: 0 });
    let sent = 0;
    let got = 0;
    ws.on('error', reject);
    ws.on('open', () => {
      for (; sent < Math.min(window, n); sent++) ws.send(out);
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary !== binary || !payload.equals(data)) {
        reject(new Error(`connection ${t} message ${got}: ${isBinary ? 'binary' : 'text'} of ${data.length} bytes`));
        return;
      }
      got++;
      if (++received === warmAt) rssWarm = process.memoryUsage().rss;
      if (sent < n) {
        ws.send(out);
        sent++;
      }
      if (got === n) ws.close(1000);
    });
    ws.on('close', () => (got === n ? resolve() : reject(new Error(`connection ${t} closed after ${got} of ${n}`))));
  });
}

const t0 = process.hrtime.bigint();
const all = [];
for (let t = 0; t < conns; t++) all.push(echo(t, Math.floor(total / conns) + (t < total % conns ? 1 : 0)));
await Promise.all(all);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
if (received !== total) throw new Error(`${received} of ${total} messages echoed`);
console.log(JSON.stringify({ requests: total, seconds, rss_warm: rssWarm, rss_end: process.memoryUsage().rss }));
