#!/usr/bin/env bash
# Interop: lurl through real proxies started (and stopped) by this test.
#   bash spec/interop_proxy_peers_test.sh <path-to-lurl>     (from the repo root)
# nginx is the origin (plain HTTP and HTTPS with a throwaway PKI from
# spec/tls/make_certs.sh); the proxies are tinyproxy, squid (Basic auth
# lurl/secret, plain and TLS ports) and microsocks (SOCKS5 without and with
# a user), from spec/interop/proxy_peers.sh. curl goes first through each as
# the oracle, then lurl does the same (spec/interop/proxy_client.lua, one
# JSON line a request), and the proxies' logs tell how many connections the
# client made. Skips when a peer is not installed.
set -u

LURL=${1:?usage: bash spec/interop_proxy_peers_test.sh <path-to-lurl>}
NGINX=${NGINX:-/usr/sbin/nginx}
NCSA=/usr/lib/squid/basic_ncsa_auth
for need in "$NGINX" openssl curl tinyproxy squid "$NCSA" htpasswd microsocks; do
  if ! command -v "$need" >/dev/null 2>&1; then
    echo "SKIPPED: $need not installed (scripts/setup --tests installs it)"
    exit 0
  fi
done
. "$(dirname "$0")/interop/common.sh" proxy-peers
. spec/interop/proxy_peers.sh
SERVER_LOG="$T/error.log"
START=$(date +%s.%N)

# ---- the origin ----
PKI=$T/pki
if ! sh spec/tls/make_certs.sh "$PKI" >"$T/make_certs.log" 2>&1; then
  cat "$T/make_certs.log"; fail "spec/tls/make_certs.sh failed"; exit 1
fi
CA=$PKI/ca.pem
HELLO="hello through a proxy"
# localhost may resolve to ::1 first (SOCKS5 without the h resolves it on
# the client): nginx listens there too when IPv6 works
LISTEN6=
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then LISTEN6=1; fi
write_conf() {
  cat > "$T/nginx.conf" <<CONF
$NGINX_MAIN
http {
  access_log $T/access.log;
  $NGINX_HTTP
  ssl_certificate $PKI/server.pem;
  ssl_certificate_key $PKI/server.key;
  server {
    listen 127.0.0.1:$1;
    listen 127.0.0.1:$2 ssl;
    ${LISTEN6:+listen [::1]:$1; listen [::1]:$2 ssl;}
    server_name localhost;
    default_type text/plain;
    location = /hello { return 200 "$HELLO"; }
    # POST: the body comes back (nginx hands it to /echo_inner in a header)
    location = /echo {
      client_body_in_single_buffer on;
      client_body_buffer_size 64k;
      proxy_set_header X-Echo-Body \$request_method:\$request_body;
      proxy_pass http://127.0.0.1:$1/echo_inner;
    }
    location = /echo_inner { allow 127.0.0.1; deny all; return 200 \$http_x_echo_body; }
  }
}
CONF
}
start_nginx 2
if [ -z "$SERVER_PID" ]; then fail "nginx did not start"; exit 1; fi
HTTP=http://127.0.0.1:${PORTS[0]}
HTTPS=https://localhost:${PORTS[1]}
echo "origin: nginx on $HTTP and $HTTPS"

# ---- the proxies ----
start_tinyproxy || { fail "tinyproxy did not start"; exit 1; }
start_squid "$PKI/server.pem" "$PKI/server.key" || { fail "squid did not start"; exit 1; }
start_socks SOCKS || { fail "microsocks did not start"; exit 1; }
start_socks SOCKS_AUTH "$PROXY_USER" "$PROXY_PASS" || { fail "microsocks (with a user) did not start"; exit 1; }
DEAD=$(free_port)
CRED=$PROXY_USER:$PROXY_PASS
TP=http://127.0.0.1:$TINYPROXY_PORT
SQ=http://127.0.0.1:$SQUID_PORT
SQT=https://127.0.0.1:$SQUID_TLS_PORT
S5=127.0.0.1:$SOCKS_PORT
S5A=127.0.0.1:$SOCKS_AUTH_PORT

# expect WHAT WANT GOT: a pass when GOT is WANT.
expect() {
  if [ "$3" = "$2" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

# ---- connections as the proxies saw them ----
# squid_conns MARK: "requests connections" of the access log's lines whose
# URL holds MARK (one client port, one connection).
squid_conns() {
  awk -v m="$1" 'index($4, m) { n++; if (!($2 in c)) { c[$2] = 1; k++ } } END { print n + 0, k + 0 }' "$SQUID_LOG"
}
# tinyproxy_conns MARK: the same from tinyproxy's log: each request line
# belongs to the last connection accepted on its descriptor.
tinyproxy_conns() {
  awk -v m="$1" '
    match($0, /Connect \(file descriptor [0-9]+\)/) { fd = substr($0, RSTART + 24, RLENGTH - 25); at[fd] = NR }
    match($0, /Request \(file descriptor [0-9]+\)/) && index($0, m) {
      fd = substr($0, RSTART + 24, RLENGTH - 25); n++; if (!(at[fd] in c)) { c[at[fd]] = 1; k++ }
    }
    END { print n + 0, k + 0 }' "$TINYPROXY_LOG"
}
# log_lines FILE: its line count (microsocks logs a line per relayed connection).
log_lines() { wc -l < "$1"; }

# ---- curl, the oracle ----
# ccurl WHAT WANT CURL-ARGS...: the status code curl reports, and for a 200
# the body of /hello or of /echo.
ccurl() {
  local what=$1 want=$2 got
  shift 2
  got=$(curl -sS --max-time 10 --cacert "$CA" --proxy-cacert "$CA" -w ' %{http_code}' "$@" 2>>"$T/curl.err")
  expect "curl: $what" "$want" "$got"
}
echo "--- curl"
via_proxies() { # NAME PROXY-ARGS...: GET and POST to both origins
  local name=$1
  shift
  ccurl "$name: GET http origin" "$HELLO 200" "$@" "$HTTP/hello"
  ccurl "$name: GET https origin (tunnel)" "$HELLO 200" "$@" "$HTTPS/hello"
  ccurl "$name: POST http origin" "POST:a=1&b=2 200" "$@" -d 'a=1&b=2' "$HTTP/echo"
  ccurl "$name: POST https origin (tunnel)" "POST:a=1&b=2 200" "$@" -d 'a=1&b=2' "$HTTPS/echo"
}
via_proxies tinyproxy -x "$TP"
via_proxies squid -x "$SQ" -U "$CRED"
via_proxies "squid over TLS" -x "$SQT" -U "$CRED"
via_proxies socks5 -x "socks5://$S5"
via_proxies socks5h -x "socks5h://$S5"
via_proxies "socks5 with a user" -x "socks5://$CRED@$S5A"
via_proxies "socks5h with a user" -x "socks5h://$CRED@$S5A"
ccurl "squid without credentials: http origin" " 407" -o /dev/null -x "$SQ" "$HTTP/hello"
ccurl "squid with a wrong password: http origin" " 407" -o /dev/null -x "$SQ" -U "$PROXY_USER:wrong" "$HTTP/hello"
got=$(curl -sS --max-time 10 --cacert "$CA" -o /dev/null -w '%{http_connect}' -x "$SQ" "$HTTPS/hello" 2>>"$T/curl.err")
expect "curl: squid without credentials: https origin, CONNECT answered" "407" "$got"
curl -sS --max-time 10 -o /dev/null -x "socks5://$S5A" "$HTTP/hello" 2>>"$T/curl.err"
expect "curl: socks5 proxy wanting a user, none given: exit status 97" 97 "$?"
# keep-alive: curl reuses its connection for the URLs of one command line.
# curl10 MARK CURL-ARGS...: 10 GETs of /hello?MARK-N in one curl.
curl10() {
  local mark=$1 i urls=()
  shift
  for i in $(seq 10); do urls+=("$HTTP/hello?$mark-$i"); done
  curl -sS --max-time 20 "$@" "${urls[@]}" >/dev/null 2>>"$T/curl.err"
}
curl10 curl-ka-squid -x "$SQ" -U "$CRED"
expect "curl: squid: 10 requests on 1 connection" "10 1" "$(squid_conns curl-ka-squid)"
# tinyproxy closes the connection after each response (HTTP/1.1, without
# Connection: close): curl finds it dead and connects again; so must lurl
curl10 curl-ka-tinyproxy -x "$TP"
TINYPROXY_KA=$(tinyproxy_conns curl-ka-tinyproxy)
expect "curl: tinyproxy: 10 requests on 10 connections (it does not keep them alive)" "10 10" "$TINYPROXY_KA"
before=$(log_lines "$SOCKS_LOG")
curl10 curl-ka-socks -x "socks5://$S5"
expect "curl: socks5: 10 requests through 1 connection (microsocks' log)" 1 $(($(log_lines "$SOCKS_LOG") - before))

# ---- lurl ----
# lurl_run ARGS...: proxy_client.lua's JSON lines in OUT (empty when it
# did not run: its stderr is shown then).
lurl_run() {
  OUT=$(timeout 30 "$LURL" spec/interop/proxy_client.lua "$@" 2>"$T/lurl.err")
  local rc=$?
  printf '%s\n' "$OUT" >> "$T/lurl.jsonl"
  if [ "$rc" -ne 0 ]; then
    echo "  proxy_client.lua $* exited with status $rc:"; sed 's/^/    /' "$T/lurl.err" | head -n 3
  fi
}
# json FIELD: a field of OUT's first JSON line; strings come without their
# quotes, with \/ unescaped.
json() {
  printf '%s\n' "$OUT" | head -n 1 | grep -o "\"$1\":\\(\"[^\"]*\"\\|[^,}]*\\)" | head -n 1 |
    sed -e "s/^\"$1\"://" -e 's/^"//' -e 's/"$//' -e 's/\\\//\//g'
}
# summary: "STATUS BODY" of a response (the body when short), "KIND STATUS"
# of an error (the status when it has one)
summary() {
  local first second
  if [ -n "$(json error)" ]; then first=$(json error) second=$(json status); else first=$(json status) second=$(json body); fi
  echo "$first${second:+ $second}"
}
lurl_check() { # WHAT WANT ARGS...: proxy_client.lua with ARGS, its first line's summary
  local what=$1 want=$2
  shift 2
  lurl_run "$@"
  expect "lurl: $what" "$want" "$(summary)"
}
echo "--- lurl"
lurl_via() { # NAME ARGS...: GET and POST to both origins
  local name=$1
  shift
  lurl_check "$name: GET http origin" "200 $HELLO" url="$HTTP/hello" "$@"
  lurl_check "$name: GET https origin (tunnel)" "200 $HELLO" url="$HTTPS/hello" cafile="$CA" "$@"
  lurl_check "$name: POST http origin" "200 POST:a=1&b=2" url="$HTTP/echo" method=POST data='a=1&b=2' "$@"
  lurl_check "$name: POST https origin (tunnel)" "200 POST:a=1&b=2" url="$HTTPS/echo" cafile="$CA" method=POST \
    data='a=1&b=2' "$@"
}
lurl_via tinyproxy proxy="$TP"
lurl_via squid proxy="$SQ" auth="$CRED"
lurl_via "squid, credentials in the proxy URL" proxy="http://$CRED@127.0.0.1:$SQUID_PORT"
lurl_via "squid over TLS" proxy="$SQT" auth="$CRED" proxy_cafile="$CA"
lurl_via socks5 proxy="socks5://$S5"
lurl_via socks5h proxy="socks5h://$S5"
lurl_via "socks5 with a user" proxy="socks5://$CRED@$S5A"
lurl_via "socks5h with a user" proxy="socks5h://$CRED@$S5A"
lurl_check "socks5h, the user in proxy_auth: GET https origin" "200 $HELLO" url="$HTTPS/hello" cafile="$CA" \
  proxy="socks5h://$S5A" auth="$CRED"
lurl_run url="$HTTP/hello" proxy="http://$CRED@127.0.0.1:$SQUID_PORT"
expect "lurl: resp.proxy is the proxy's URL without the credentials" "$SQ" "$(json proxy)"

# 407: a CONNECT refused is ClientHttpProxyError (status 407); a request in
# absolute-form gets the proxy's 407 as its response, as with curl and
# aiohttp (docs/proxies.md).
lurl_check "squid without credentials: https origin -> ClientHttpProxyError 407" "ClientHttpProxyError 407" \
  url="$HTTPS/hello" cafile="$CA" proxy="$SQ"
lurl_check "squid with a wrong password: https origin -> ClientHttpProxyError 407" "ClientHttpProxyError 407" \
  url="$HTTPS/hello" cafile="$CA" proxy="$SQ" auth="$PROXY_USER:wrong"
lurl_check "squid without credentials: http origin -> the proxy's 407 as the response" 407 url="$HTTP/hello" proxy="$SQ"
lurl_check "socks5 proxy wanting a user, none given -> ClientProxyConnectionError" ClientProxyConnectionError \
  url="$HTTP/hello" proxy="socks5://$S5A"
lurl_check "socks5 proxy, wrong password -> ClientProxyConnectionError" ClientProxyConnectionError \
  url="$HTTP/hello" proxy="socks5://$PROXY_USER:wrong@$S5A"

# A proxy nobody listens on: refused at once, well under sock_connect (3 s).
dead() { # NAME PROXY-URL
  lurl_check "dead $1 proxy -> ClientProxyConnectionError" ClientProxyConnectionError \
    url="$HTTPS/hello" cafile="$CA" proxy="$2" connect=3
  if awk -v e="$(json elapsed)" 'BEGIN { exit !(e != "" && e < 1) }'; then
    pass "lurl: dead $1 proxy: failed in $(printf %.4f "$(json elapsed)") s"
  else
    fail "lurl: dead $1 proxy: want a failure in under 1 s, took '$(json elapsed)' s"
  fi
}
dead http "http://127.0.0.1:$DEAD"
dead socks5 "socks5://127.0.0.1:$DEAD"

# ---- keep-alive, as the proxies saw it ----
# lurl_ka WHAT MARK ARGS...: 10 GETs on one session, all 200
lurl_ka() {
  local what=$1 mark=$2
  shift 2
  lurl_run n=10 url="$HTTP/hello?$mark" "$@"
  expect "lurl: $what: 10 responses 200" 10 "$(printf '%s\n' "$OUT" | grep -c '"status":200')"
}
lurl_ka "squid" lurl-ka-squid proxy="$SQ" auth="$CRED"
expect "lurl: squid: 10 requests on 1 connection (squid's access log)" "10 1" "$(squid_conns lurl-ka-squid)"
lurl_ka "tinyproxy" lurl-ka-tinyproxy proxy="$TP"
expect "lurl: tinyproxy: requests and connections as curl's (tinyproxy's log)" "$TINYPROXY_KA" \
  "$(tinyproxy_conns lurl-ka-tinyproxy)"
before=$(log_lines "$SOCKS_LOG")
lurl_ka "socks5" lurl-ka-socks proxy="socks5://$S5"
expect "lurl: socks5: 10 requests through 1 connection (microsocks' log)" 1 $(($(log_lines "$SOCKS_LOG") - before))
before=$(grep -c ' CONNECT ' "$SQUID_LOG")
lurl_run n=10 url="$HTTPS/hello" cafile="$CA" proxy="$SQ" auth="$CRED"
sleep 0.3   # squid logs a CONNECT when the tunnel closes: let the line land
expect "lurl: squid, https origin: 10 responses 200" 10 "$(printf '%s\n' "$OUT" | grep -c '"status":200')"
expect "lurl: squid, https origin: 10 requests in 1 tunnel (squid's access log)" 1 \
  $(($(grep -c ' CONNECT ' "$SQUID_LOG") - before))

if grep -q "$PROXY_PASS" "$T/lurl.jsonl"; then
  fail "lurl: the proxy's password in a response or an error"; grep "$PROXY_PASS" "$T/lurl.jsonl" | head -n 3
else
  pass "lurl: the proxy's password in no response and no error"
fi
# Every request squid logged was answered 200, or 407 for want of credentials
# (a 400 would be a request squid could not parse). The probes that waited
# for squid's ports closed without a request: squid logs those as
# error:transaction-end-before-headers.
squid_other() {
  awk '$5 != 200 && $5 != 407 && $4 != "error:transaction-end-before-headers"' "$SQUID_LOG"
}
if [ -n "$(squid_other)" ]; then
  fail "squid's access log: answers other than 200 and 407"; squid_other | head
else
  pass "squid's access log: every answer 200 or 407"
fi

if [ "$FAILED" -ne 0 ]; then
  echo "--- squid's access log (last 15 lines) ---"; tail -n 15 "$SQUID_LOG"
  echo "--- tinyproxy's log (last 15 lines) ---"; tail -n 15 "$TINYPROXY_LOG"
fi
stop_all
END=$(date +%s.%N)
echo "interop_proxy_peers: $PASSED passed, $FAILED failed ($(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", b - a }') s)"
[ "$FAILED" -eq 0 ]
