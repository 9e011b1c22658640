#!/usr/bin/env bash
# Interop: lurl's HTTP/2 against nginx (http2 over TLS with ALPN, h2c with
# prior knowledge, and a TLS server without h2), started and stopped here.
#   bash spec/interop_h2_nginx_test.sh <path-to-lurl>     (from the repo root)
# The client side is spec/interop/h2_client.lua.
set -u

LURL=${1:?usage: bash spec/interop_h2_nginx_test.sh <path-to-lurl>}
NGINX=${NGINX:-/usr/sbin/nginx}
if [ ! -x "$NGINX" ]; then echo "SKIPPED: nginx not installed ($NGINX not found)"; exit 0; fi
if ! command -v openssl >/dev/null 2>&1; then echo "SKIPPED: openssl command not installed"; exit 0; fi
STOP_SIGNAL=QUIT
. "$(dirname "$0")/interop/common.sh" nginx-h2
SERVER_LOG="$T/error.log"

PKI=$T/pki
if ! sh spec/tls/make_certs.sh "$PKI" >"$T/make_certs.log" 2>&1; then
  cat "$T/make_certs.log"; fail "spec/tls/make_certs.sh failed"; echo "interop_h2: $PASSED passed, $FAILED failed"; exit 1
fi
WWW=$T/www
mkdir -p "$WWW/static" "$WWW/dav"
printf 'hello over h2\n' > "$WWW/static/hello.txt"
head -c 1048576 /dev/urandom > "$WWW/static/blob.bin"

write_conf() {
  cat > "$T/nginx.conf" <<CONF
$NGINX_MAIN
http {
  default_type application/octet-stream;
  access_log $T/access.log;
  $NGINX_HTTP
  ssl_certificate $PKI/server.pem;
  ssl_certificate_key $PKI/server.key;
  server {
    listen 127.0.0.1:$1 ssl http2;
    root $WWW;
    location /dav/ { dav_methods PUT; client_max_body_size 16m; client_body_temp_path $T/body; }
  }
  server { listen 127.0.0.1:$2 http2; root $WWW; }
  server { listen 127.0.0.1:$3 ssl; root $WWW; }
  # a GOAWAY after every 20th request: the streams above its last id come
  # back (since nginx 1.19.7 keepalive_requests sets it; http2_max_requests
  # is obsolete and does nothing)
  server { listen 127.0.0.1:$4 ssl http2; keepalive_requests 20; root $WWW; }
}
CONF
}
start_nginx 4 || { fail "nginx did not start"; echo "interop_h2: $PASSED passed, $FAILED failed"; exit 1; }
read -r P_H2 P_H2C P_H1 P_GOAWAY <<<"${PORTS[*]}"

if timeout 120 "$LURL" spec/interop/h2_client.lua "https://127.0.0.1:$P_H2" "$PKI/ca.pem" \
    "http://127.0.0.1:$P_H2C" "https://127.0.0.1:$P_H1" "https://127.0.0.1:$P_GOAWAY"; then
  pass "h2_client.lua"
else
  fail "h2_client.lua"
fi
check_error_log "alert|crit|emerg"
echo "interop_h2: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
