#!/usr/bin/env bash
# Interop: lurl's WebSocket client against three real servers, started and
# stopped here on free 127.0.0.1 ports:
#   bash spec/interop_websocket_test.sh <path-to-lurl>     (from the repo root)
# The peers are python3-websockets, aiohttp and node's ws, each running the
# echo server of spec/interop/ws_servers/ three times: with permessage-deflate,
# without it, and over TLS (a throwaway PKI from spec/tls/make_certs.sh). The
# client is spec/interop/ws_client.lua, one case a run and one JSON line a
# case. ws:// also goes through tinyproxy and squid (Basic auth) from
# spec/interop/proxy_peers.sh: a WebSocket takes a CONNECT tunnel, which the
# proxies' logs show. A missing peer is skipped with a message (all of them
# missing: exit 0); the proxy checks are skipped without the proxies.
set -u

LURL=${1:?usage: bash spec/interop_websocket_test.sh <path-to-lurl>}
# Debian's python3-websockets and python3-aiohttp import under the system
# Python only, not under whatever python3 comes first on PATH.
PY=${WS_PYTHON:-/usr/bin/python3}
NODE=${WS_NODE:-$(command -v /usr/bin/node || command -v nodejs)}
NODE_WS=/usr/share/nodejs/ws

PEERS_UP=()
peer_version() { # NAME VERSION-COMMAND...: NAME joins PEERS_UP when the command works
  local name=$1 v
  shift
  if v=$("$@" 2>/dev/null); then
    PEERS_UP+=("$name")
    echo "peer $name $v"
  else
    echo "SKIPPED peer $name: not installed (scripts/setup --tests installs it)"
  fi
}
peer_version websockets "$PY" -c 'import websockets; print(websockets.__version__)'
peer_version aiohttp "$PY" -c 'import aiohttp; print(aiohttp.__version__)'
peer_version node-ws "${NODE:-false}" -p "require('$NODE_WS/package.json').version"
if [ ${#PEERS_UP[@]} -eq 0 ]; then echo "SKIPPED: no WebSocket server installed"; exit 0; fi
if ! command -v openssl >/dev/null 2>&1; then echo "SKIPPED: openssl not installed"; exit 0; fi
PROXIES=1
for need in tinyproxy squid /usr/lib/squid/basic_ncsa_auth htpasswd; do
  if ! command -v "$need" >/dev/null 2>&1; then
    echo "SKIPPED the proxy checks: $need not installed"; PROXIES=
  fi
done

. "$(dirname "$0")/interop/common.sh" websocket
. spec/interop/proxy_peers.sh
SERVERS=spec/interop/ws_servers
START=$(date +%s)

PKI=$T/pki
if ! sh spec/tls/make_certs.sh "$PKI" >"$T/make_certs.log" 2>&1; then
  cat "$T/make_certs.log"; fail "spec/tls/make_certs.sh failed"; exit 1
fi

# ---- the servers ----
# ws_cmd PEER PORT [OPTIONS...]: the command line of PEER's echo server
ws_cmd() {
  local peer=$1
  shift
  case $peer in
    websockets) PEER_CMD=("$PY" "$SERVERS/websockets_server.py" "$@") ;;
    aiohttp) PEER_CMD=("$PY" "$SERVERS/aiohttp_server.py" "$@") ;;
    node-ws) PEER_CMD=(env NODE_WS="$NODE_WS" "$NODE" "$SERVERS/ws_server.js" "$@") ;;
  esac
}
# peer_start calls these with the free port it picked
deflate_cmd() { ws_cmd "$PEER" "$1"; }
plain_cmd() { ws_cmd "$PEER" "$1" --no-deflate; }
tls_cmd() { ws_cmd "$PEER" "$1" --cert "$PKI/server.pem" --key "$PKI/server.key"; }

# start_peer PEER: its three servers, their ports in DEFLATE, PLAIN and TLS,
# their PIDs in SERVER_PIDS
start_peer() {
  PEER=$1
  SERVER_PIDS=()
  peer_start "$PEER-deflate" 1 deflate_cmd || return 1
  DEFLATE=${PEER_PORTS[0]} SERVER_PIDS+=("$PEER_PID")
  peer_start "$PEER-plain" 1 plain_cmd || return 1
  PLAIN=${PEER_PORTS[0]} SERVER_PIDS+=("$PEER_PID")
  peer_start "$PEER-tls" 1 tls_cmd || return 1
  TLS=${PEER_PORTS[0]} SERVER_PIDS+=("$PEER_PID")
}

stop_peer() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
}

# ---- the checks ----
# check WHAT GLOB KEY=VALUE...: ws_client.lua with the keys must print an
# ok line that also matches GLOB; the line is shown when it does not.
check() {
  local what=$1 want=$2 out
  shift 2
  out=$(timeout 30 "$LURL" spec/interop/ws_client.lua "$@" 2>&1)
  # shellcheck disable=SC2053 # want is a glob
  if [[ $out == *'"ok":true'* && $out == $want ]]; then
    pass "$what"
  else
    fail "$what"; echo "     lurl ws_client.lua $*"; echo "     => $out"
  fi
}
# refused WHAT KIND KEY=VALUE...: the case must fail with a lurl error of KIND
refused() {
  local what=$1 kind=$2 out
  shift 2
  out=$(timeout 30 "$LURL" spec/interop/ws_client.lua "$@" 2>&1)
  if [[ $out == *'"ok":false'* && $out == *"\"error\":\"$kind\""* ]]; then
    pass "$what"
  else
    fail "$what: want a $kind"; echo "     lurl ws_client.lua $*"; echo "     => $out"
  fi
}

SIZES=0,1,125,126,65535,65536,1048576
NEGOTIATED='*"extensions":"permessage-deflate*'
NONE='*"extensions":false*'

# messages both ways at every length encoding (RFC 6455 section 5.2: 7-bit,
# 16-bit and 64-bit lengths), with and without permessage-deflate
echo_checks() {
  local base=ws://127.0.0.1:$DEFLATE plain=ws://127.0.0.1:$PLAIN kind
  for kind in text binary; do
    check "$PEER: $kind echo $SIZES, deflate" "$NEGOTIATED" url="$base/echo" case=echo type=$kind sizes=$SIZES
    check "$PEER: $kind echo $SIZES, server without deflate" "$NONE" \
      url="$plain/echo" case=echo type=$kind sizes=$SIZES
    check "$PEER: $kind echo $SIZES, compress=0" "$NONE" url="$base/echo" case=echo type=$kind sizes=$SIZES compress=0
  done
  check "$PEER: 200 messages sent before reading, deflate" '*"messages":200*' url="$base/echo" case=burst
  check "$PEER: 200 messages sent before reading, no deflate" '*"messages":200*' url="$plain/echo" case=burst
  check "$PEER: permessage-deflate negotiated, 1 MiB compressible round trip" "$NEGOTIATED" \
    url="$base/echo" case=deflate
  check "$PEER: compress=0: no extension, 1 MiB round trip" "$NONE" url="$base/echo" case=deflate compress=0
  # RFC 7692 section 7.1.2.1: a server that accepts the offer keeps to the window
  check "$PEER: compress=9: server_max_window_bits=9 agreed, 1 MiB round trip" '*server_max_window_bits=9*' \
    url="$base/echo" case=deflate compress=9
}

protocol_checks() {
  local base=ws://127.0.0.1:$DEFLATE code
  if [ "$PEER" = aiohttp ]; then
    echo "skip $PEER: fragmentation (aiohttp sends every message in one frame)"
  else
    check "$PEER: one text message in 3 frames, deflate" '*' url="$base/frag" case=frag
    check "$PEER: one text message in 3 frames, no deflate" '*' url="ws://127.0.0.1:$PLAIN/frag" case=frag
  fi
  check "$PEER: ping \"p\" answered (the server saw the pong), echo after" '*"pong_seen":true*' \
    url="$base/ping" case=ping
  check "$PEER: autoping=0: the ping reaches the script, its pong the server" '*"pong_seen":true*' \
    url="$base/ping" case=ping autoping=0
  for code in 1000 1001 4000; do
    check "$PEER: server closes with $code \"bye $code\"" "*\"close_code\":$code*" \
      url="$base/close/$code" case=close code=$code
  done
  check "$PEER: subprotocol chat" '*"protocol":"chat"*' url="$base/subproto" case=subproto
}

tls_checks() {
  local base=wss://localhost:$TLS
  check "$PEER: wss:// text echo $SIZES" "$NEGOTIATED" \
    url="$base/echo" case=echo type=text sizes=$SIZES cafile="$PKI/ca.pem"
  check "$PEER: wss:// binary echo $SIZES" "$NEGOTIATED" \
    url="$base/echo" case=echo type=binary sizes=$SIZES cafile="$PKI/ca.pem"
  check "$PEER: wss:// server closes with 4000" '*"close_code":4000*' \
    url="$base/close/4000" case=close code=4000 cafile="$PKI/ca.pem"
  refused "$PEER: wss:// without the test CA" ClientConnectorCertificateError url="$base/echo" case=echo
}

# tunneled LOG PORT NAME: proxy NAME's log must show a CONNECT to 127.0.0.1:PORT
tunneled() {
  if grep -a "CONNECT 127.0.0.1:$2" "$1" >/dev/null 2>&1; then
    pass "$PEER: $3 logged CONNECT 127.0.0.1:$2"
  else
    fail "$PEER: $3 logged no CONNECT 127.0.0.1:$2"; tail -n 5 "$1"
  fi
}

proxy_checks() {
  local base=ws://127.0.0.1:$DEFLATE sizes=0,126,65536 cred=$PROXY_USER:$PROXY_PASS
  check "$PEER: ws:// through tinyproxy" "$NEGOTIATED" url="$base/echo" case=echo sizes=$sizes \
    proxy="http://127.0.0.1:$TINYPROXY_PORT"
  tunneled "$TINYPROXY_LOG" "$DEFLATE" tinyproxy
  check "$PEER: ws:// through squid with Basic auth" "$NEGOTIATED" url="$base/echo" case=echo type=binary \
    sizes=$sizes proxy="http://127.0.0.1:$SQUID_PORT" auth="$cred"
  check "$PEER: ws:// through squid, server closes with 4000" '*"close_code":4000*' \
    url="$base/close/4000" case=close code=4000 proxy="http://127.0.0.1:$SQUID_PORT" auth="$cred"
  tunneled "$SQUID_LOG" "$DEFLATE" squid
  check "$PEER: wss:// through squid with Basic auth" "$NEGOTIATED" url="wss://localhost:$TLS/echo" case=echo \
    sizes=$sizes proxy="http://127.0.0.1:$SQUID_PORT" auth="$cred" cafile="$PKI/ca.pem"
  refused "$PEER: squid without credentials refuses the tunnel (407)" ClientHttpProxyError \
    url="$base/echo" case=echo proxy="http://127.0.0.1:$SQUID_PORT"
}

# the server's output must hold no traceback or error line
server_logs() {
  local f bad=
  for f in "$PEERS/$PEER"-*.out; do
    if grep -aE 'Traceback|ERROR|Error handling request|connection handler failed' "$f" >/dev/null; then
      bad=1; echo "--- $f"; grep -aE -A3 'Traceback|ERROR|Error handling request|connection handler failed' "$f" | head -20
    fi
  done
  if [ -z "$bad" ]; then pass "$PEER: servers logged no errors"; else fail "$PEER: servers logged errors"; fi
}

if [ -n "$PROXIES" ]; then
  start_tinyproxy || { fail "tinyproxy did not start"; PROXIES=; }
  # shellcheck disable=SC2119 # no certificate: no TLS port
  start_squid || { fail "squid did not start"; PROXIES=; }
fi

for PEER in "${PEERS_UP[@]}"; do
  echo "--- $PEER"
  if ! start_peer "$PEER"; then fail "$PEER: its servers did not start"; stop_peer; continue; fi
  echo_checks
  protocol_checks
  tls_checks
  if [ -n "$PROXIES" ]; then proxy_checks; fi
  stop_peer
  server_logs
done

stop_all
echo "interop_websocket: $PASSED passed, $FAILED failed ($(($(date +%s) - START)) s)"
[ "$FAILED" -eq 0 ]
