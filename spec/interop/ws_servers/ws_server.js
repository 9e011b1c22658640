// WebSocket echo server on node's ws (Debian's node-ws), a peer of
// spec/interop_websocket_test.sh.
//   node ws_server.js PORT [--cert PEM --key PEM] [--no-deflate]
// Listens on 127.0.0.1:PORT (wss:// with --cert and --key), prints "ready"
// once it accepts, and serves until killed. Paths:
//   /echo          every message back, text as text and binary as binary
//   /close/CODE    a close frame with CODE and the reason "bye CODE"
//   /ping          a ping "p", then "pong:p" once a pong with that payload
//                  came back or "no pong", then /echo
//   /frag          "one-two-three" as one text message in 3 frames, then /echo
//   /subproto      "protocol:NAME" (the subprotocol agreed, "chat" when
//                  offered), then /echo
"use strict";
const fs = require("fs");
const http = require("http");
const https = require("https");
const { WebSocketServer } = require(process.env.NODE_WS || "/usr/share/nodejs/ws");

function parseArgs(argv) {
  const args = { port: Number(argv[0]), deflate: true };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === "--cert") args.cert = argv[++i];
    else if (argv[i] === "--key") args.key = argv[++i];
    else if (argv[i] === "--no-deflate") args.deflate = false;
    else throw new Error("unknown argument " + argv[i]);
  }
  return args;
}

function echo(ws) {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function ping(ws) {
  const timer = setTimeout(() => { ws.send("no pong"); echo(ws); }, 5000);
  ws.once("pong", (data) => {
    clearTimeout(timer);
    ws.send("pong:" + data.toString());
    echo(ws);
  });
  ws.ping("p");
}

const CLOSE = /^\/close\/(\d+)$/;

function route(ws, path) {
  const close = CLOSE.exec(path);
  if (close) {
    const code = Number(close[1]);
    ws.close(code, "bye " + code);
  } else if (path === "/ping") {
    ping(ws);
  } else if (path === "/frag") {
    // fin: false keeps the message open; the frames after it are
    // continuations (RFC 6455 section 5.4)
    ws.send("one-", { fin: false });
    ws.send("two-", { fin: false });
    ws.send("three", { fin: true });
    echo(ws);
  } else if (path === "/subproto") {
    ws.send("protocol:" + ws.protocol);
    echo(ws);
  } else {
    echo(ws);
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = args.cert
    ? https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) })
    : http.createServer();
  server.on("request", (req, res) => { res.writeHead(404); res.end("no such path\n"); });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: args.deflate,
    maxPayload: 8 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has("chat") ? "chat" : false),
  });
  server.on("upgrade", (req, socket, head) => {
    const path = req.url.split("?")[0];
    if (!(["/echo", "/ping", "/frag", "/subproto"].includes(path) || CLOSE.test(path))) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", (e) => console.error("ERROR " + path + ": " + e.message));
      route(ws, path);
    });
  });
  server.listen(args.port, "127.0.0.1", () => console.log("ready"));
}

main();
