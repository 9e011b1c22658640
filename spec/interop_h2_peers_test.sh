#!/usr/bin/env bash
# Interop: lurl's HTTP/2 against nghttpd (the nghttp2 project's server, h2
# over TLS and h2c) and h2o (h2 over TLS), started and stopped here, with
# curl --http2 and nghttp as oracles for what the servers send. nginx has
# its own check (spec/interop_h2_nginx_test.sh).
#   bash spec/interop_h2_peers_test.sh <path-to-lurl>     (from the repo root)
# The client side is spec/interop/h2_peers_client.lua.
set -u

LURL=${1:?usage: bash spec/interop_h2_peers_test.sh <path-to-lurl>}
for tool in nghttpd h2o nghttp curl openssl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "SKIPPED: $tool not installed (scripts/packages/test.txt)"; exit 0
  fi
done
. "$(dirname "$0")/interop/common.sh" h2-peers
NGHTTPD=$(command -v nghttpd || echo /usr/sbin/nghttpd)
H2O_PID=; NGHTTPD_TLS_PID=; NGHTTPD_H2C_PID=
SERVER_LOG="$T/h2o-error.log"   # common.sh shows its tail when something failed

PKI=$T/pki
if ! sh spec/tls/make_certs.sh "$PKI" >"$T/make_certs.log" 2>&1; then
  cat "$T/make_certs.log"; fail "spec/tls/make_certs.sh failed"; echo "interop_h2_peers: $PASSED passed, $FAILED failed"
  exit 1
fi
WWW=$T/www
mkdir -p "$WWW"
printf 'hello over h2\n' > "$WWW/hello.txt"
head -c 8388608 /dev/urandom > "$WWW/big.bin"

stop_peers() {
  stop_pid "$H2O_PID"; stop_pid "$NGHTTPD_TLS_PID"; stop_pid "$NGHTTPD_H2C_PID"
  H2O_PID=; NGHTTPD_TLS_PID=; NGHTTPD_H2C_PID=
}
trap 'stop_peers; cleanup' EXIT

P_NG_TLS=$(free_port); P_NG_H2C=$(free_port); P_H2O=$(free_port); P_ECHO=$(free_port)

# nghttpd: 1,000 streams at once on a connection, uploads echoed back
"$NGHTTPD" -a 127.0.0.1 -d "$WWW" -m 1000 --echo-upload "$P_NG_TLS" "$PKI/server.key" "$PKI/server.pem" \
  > "$T/nghttpd-tls.log" 2>&1 &
NGHTTPD_TLS_PID=$!
"$NGHTTPD" -a 127.0.0.1 -d "$WWW" -m 1000 --echo-upload --no-tls "$P_NG_H2C" > "$T/nghttpd-h2c.log" 2>&1 &
NGHTTPD_H2C_PID=$!

# h2o: files, and /echo/ proxied to a lurl.testing.server the client starts
cat > "$T/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: $P_H2O
  ssl:
    certificate-file: $PKI/server.pem
    key-file: $PKI/server.key
    ocsp-update-interval: 0
http2-max-concurrent-requests-per-connection: 1000
num-threads: 1
# as root h2o would switch to nobody, who cannot write into the scratch directory
user: $(id -un)
error-log: $T/h2o-error.log
hosts:
  "default":
    paths:
      /:
        file.dir: $WWW
      /echo:
        proxy.reverse.url: http://127.0.0.1:$P_ECHO/echo
CONF
h2o -c "$T/h2o.conf" > "$T/h2o.out" 2>&1 &
H2O_PID=$!

for _ in $(seq 100); do all_up "$P_NG_TLS" "$P_NG_H2C" "$P_H2O" && break; sleep 0.1; done
if ! all_up "$P_NG_TLS" "$P_NG_H2C" "$P_H2O"; then
  fail "nghttpd and h2o did not start"; tail -n 5 "$T"/nghttpd-*.log "$T/h2o.out" "$T/h2o-error.log" 2>/dev/null
  echo "interop_h2_peers: $PASSED passed, $FAILED failed"; exit 1
fi

# The oracles: curl and nghttp see each server speak h2 and serve the files
# lurl is about to fetch, byte for byte.
big_sum=$(sha256sum < "$WWW/big.bin" | cut -d' ' -f1)
for peer in "nghttpd https://127.0.0.1:$P_NG_TLS" "h2o https://127.0.0.1:$P_H2O"; do
  read -r name base <<<"$peer"
  got=$(curl -sS --http2 --cacert "$PKI/ca.pem" -o /dev/null -w '%{http_version}' "$base/hello.txt" 2>&1)
  if [ "$got" = 2 ]; then pass "curl --http2 speaks h2 to $name"; else fail "curl --http2 to $name: $got"; fi
  sum=$(curl -sS --http2 --cacert "$PKI/ca.pem" "$base/big.bin" | sha256sum | cut -d' ' -f1)
  if [ "$sum" = "$big_sum" ]; then pass "curl --http2: $name's 8 MiB file"; else fail "curl --http2: $name's 8 MiB file differs"; fi
done
if nghttp -nv "http://127.0.0.1:$P_NG_H2C/hello.txt" 2>&1 | grep -q "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000"; then
  pass "nghttp -v: nghttpd (h2c) allows 1,000 streams"
else
  fail "nghttp -v: nghttpd's SETTINGS do not allow 1,000 streams"
fi

if timeout 180 "$LURL" spec/interop/h2_peers_client.lua "$PKI/ca.pem" \
    "https://127.0.0.1:$P_NG_TLS" "http://127.0.0.1:$P_NG_H2C" "https://127.0.0.1:$P_H2O" "$P_ECHO" "$WWW/big.bin"; then
  pass "h2_peers_client.lua"
else
  fail "h2_peers_client.lua"
fi
if grep -aiE "\[(error|crit|alert|emerg)\]|segfault|abort" "$T/h2o-error.log" >/dev/null 2>&1; then
  fail "h2o's error log has errors"; grep -aiE "error|crit|alert|emerg" "$T/h2o-error.log" | head
else
  pass "h2o's error log: no errors"
fi
echo "interop_h2_peers: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
