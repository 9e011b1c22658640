#!/usr/bin/env bash
# Interop: lurl over HTTPS against a real nginx started (and stopped) by this test.
#   bash spec/interop_tls_test.sh <path-to-lurl>     (from the repo root)
# A throwaway PKI is made with spec/tls/make_certs.sh; nginx runs as the
# current user, from a generated config in a temp dir, with three TLS servers
# on free 127.0.0.1 ports:
#   (a) server.pem, session tickets (the default), keep-alive, /info telling
#       "$connection $connection_requests $ssl_protocol $ssl_session_reused", /sni,
#       the same after every 3rd request (/info_limited) or 1 s idle
#       (/info_short), a 1 MiB static file, a chunked SSI page including it
#       and /dav/ for uploads; it also listens on [::1] (same port) when IPv6
#       works, and for plain HTTP on a fourth port (for https:// sent there);
#   (b) the same certificate, and client certificates required (ssl_verify_client
#       on, trusting ca.pem): /client tells "$ssl_client_verify $ssl_client_s_dn";
#   (c) like (a), TLS 1.2 only (its tickets and handshake differ from 1.3's).
# The client side is spec/interop/tls_client.lua; this script adds checks on
# nginx's access and error logs (connections and resumption as nginx saw them).
set -u

LURL=${1:?usage: bash spec/interop_tls_test.sh <path-to-lurl>}
NGINX=${NGINX:-/usr/sbin/nginx}
if [ ! -x "$NGINX" ]; then
  echo "SKIPPED: nginx not installed ($NGINX not found)"
  exit 0
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "SKIPPED: openssl command not installed (needed for the test PKI)"
  exit 0
fi
STOP_SIGNAL=QUIT
. "$(dirname "$0")/interop/common.sh" nginx-tls
. spec/interop/nginx.sh
SERVER_LOG="$T/error.log"
START=$(date +%s.%N)

# [::1] for the IPv6 address check (server.pem has IP:::1), when it can be bound
IPV6=0
if command -v python3 >/dev/null 2>&1 \
   && python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
  IPV6=1
fi

# ---- the PKI ----
PKI=$T/pki
if ! sh spec/tls/make_certs.sh "$PKI" >"$T/make_certs.log" 2>&1; then
  cat "$T/make_certs.log"; fail "spec/tls/make_certs.sh failed"; echo "interop_tls: $PASSED passed, $FAILED failed"; exit 1
fi
# SHA-256 of server.pem's DER form, as `openssl x509 -fingerprint` shows it (with colons)
FINGERPRINT=$(openssl x509 -in "$PKI/server.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
if [ -z "$FINGERPRINT" ]; then fail "cannot compute the fingerprint of server.pem"; exit 1; fi

# ---- the document root ----
WWW=$T/www
mkdir -p "$WWW/static" "$WWW/ssi" "$WWW/dav"
printf 'hello over tls\n' > "$WWW/static/hello.txt"
head -c 1048576 /dev/urandom > "$WWW/static/blob.bin"
# served through SSI, so nginx cannot know the length: a chunked response
cat > "$WWW/ssi/page.shtml" <<'HTML'
<html><body>
<!--# include virtual="/static/hello.txt" -->
<!--# include virtual="/static/blob.bin" -->
</body></html>
HTML
write_conf() {
  local port_a=$1 port_b=$2 port_c=$3 port_p=$4 listen6=
  if [ "$IPV6" -eq 1 ]; then listen6="listen [::1]:$port_a ssl;"; fi
  cat > "$T/nginx.conf" <<CONF
$NGINX_MAIN
http {
  types {
    text/plain txt;
    text/html shtml;
    application/octet-stream bin;
  }
  default_type application/octet-stream;
  log_format interop '\$server_port \$connection \$connection_requests \$ssl_protocol \$ssl_session_reused "\$request" \$status \$body_bytes_sent "\$http_user_agent"';
  access_log $T/access.log interop;
  $NGINX_HTTP
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate $PKI/server.pem;
  ssl_certificate_key $PKI/server.key;
  # (a): session tickets are on by default; no server-side session cache
  server {
    listen 127.0.0.1:$port_a ssl;
    $listen6
    listen 127.0.0.1:$port_p;
    server_name localhost;
    root $WWW;
    location /static/ { }
    location /ssi/ { ssi on; ssi_silent_errors off; }
    location /dav/ { dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 16m; }
    location = /info {
      default_type text/plain;
      return 200 "\$connection \$connection_requests \$ssl_protocol \$ssl_session_reused";
    }
    # the SNI name the client sent ("" without one)
    location = /sni { default_type text/plain; return 200 "sni=\$ssl_server_name"; }
    # nginx closes the connection after every 3rd request here
    location = /info_limited {
      keepalive_requests 3;
      default_type text/plain;
      return 200 "\$connection \$connection_requests \$ssl_protocol \$ssl_session_reused";
    }
    # and closes an idle connection after 1 s here
    location = /info_short {
      keepalive_timeout 1s;
      default_type text/plain;
      return 200 "\$connection \$connection_requests \$ssl_protocol \$ssl_session_reused";
    }
  }
  # (b): a client certificate signed by the test CA is required
  server {
    listen 127.0.0.1:$port_b ssl;
    server_name localhost;
    root $WWW;
    ssl_client_certificate $PKI/ca.pem;
    ssl_verify_client on;
    location = /client {
      default_type text/plain;
      return 200 "\$ssl_client_verify \$ssl_client_s_dn";
    }
  }
  # (c): TLS 1.2 only
  server {
    listen 127.0.0.1:$port_c ssl;
    server_name localhost;
    ssl_protocols TLSv1.2;
    root $WWW;
    location /static/ { }
    location = /info {
      default_type text/plain;
      return 200 "\$connection \$connection_requests \$ssl_protocol \$ssl_session_reused";
    }
  }
}
CONF
}

# ---- start nginx ----
start_nginx 4
PORT_A=${PORTS[0]} PORT_B=${PORTS[1]} PORT_C=${PORTS[2]} PORT_P=${PORTS[3]}
if [ -z "$SERVER_PID" ]; then fail "nginx did not start"; echo "interop_tls: $PASSED passed, $FAILED failed"; exit 1; fi
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$PORT_A (tls), :$PORT_B (tls + client certs), :$PORT_C (TLSv1.2 only), :$PORT_P (plain HTTP), docroot $WWW"
# The probes above opened (and dropped) a TCP connection to each port without a
# handshake: nginx may log them at info level, nothing worse.

# ---- the client ----
if timeout 60 "$LURL" spec/interop/tls_client.lua "$PORT_A" "$PORT_B" "$PORT_C" "$PORT_P" "$PKI" "$WWW" "$FINGERPRINT" "$IPV6"; then
  pass "tls_client.lua"
else
  fail "tls_client.lua (exit status $?)"
fi

# ---- what nginx saw ----
sleep 0.2   # access log lines are written when each request finishes; let the last land
# The client sent 20 GETs with User-Agent lurl-tls-keepalive on one session:
# nginx must log one connection for all of them, requests numbered 1..20.
check_keepalive_log lurl-tls-keepalive 2 "TLS connection"
if printf '%s\n' "$KA" | awk 'NF { i++; if ($3 != i) bad = 1 } END { exit bad }'; then
  pass "access log: connection_requests 1..20"
else
  fail "access log: connection_requests not 1..20"; printf '%s\n' "$KA" | head
fi
# Resumption: the client made a full handshake, then new connections with the
# same context (User-Agent lurl-tls-resume-N): nginx must have resumed those.
R1=$(grep -a '"lurl-tls-resume-1"$' "$T/access.log" | head -n 1)
R2=$(grep -a '"lurl-tls-resume-2"$' "$T/access.log" | head -n 1)
if [ -n "$R1" ] && [ -n "$R2" ] && [ "$(echo "$R1" | awk '{ print $2 }')" != "$(echo "$R2" | awk '{ print $2 }')" ] \
   && echo "$R1" | awk '{ exit !($5 == ".") }' && echo "$R2" | awk '{ exit !($5 == "r") }'; then
  pass "access log: second connection resumed the session (\$ssl_session_reused r)"
else
  fail "access log: resumption not seen by nginx"; printf '%s\n%s\n' "$R1" "$R2"
fi
FC=$(grep -a '"lurl-tls-force-close"$' "$T/access.log")
nfc=$(printf '%s\n' "$FC" | grep -c .)
fcconns=$(printf '%s\n' "$FC" | awk 'NF { print $2 }' | sort -u | wc -l)
fcres=$(printf '%s\n' "$FC" | awk 'NF && $5 == "r"' | wc -l)
if [ "$nfc" -eq 3 ] && [ "$fcconns" -eq 3 ] && [ "$fcres" -eq 2 ]; then
  pass "access log: force_close: 3 connections, the last 2 resumed"
else
  fail "access log: force_close: want 3 requests on 3 connections, 2 resumed; got $nfc on $fcconns, $fcres resumed"
  printf '%s\n' "$FC"
fi
# Every request nginx logged was made over TLS 1.2 or 1.3, but the one the
# client sent over plain HTTP on purpose (User-Agent lurl-tls-plain-http) and
# the ClientHello sent to the plain HTTP port (which nginx logs as a bad request).
TLSLOG=$(grep -av -e '"lurl-tls-plain-http"$' -e "^$PORT_P " "$T/access.log")
if printf '%s\n' "$TLSLOG" | awk 'NF && $4 != "TLSv1.2" && $4 != "TLSv1.3" { bad = 1 } END { exit bad }'; then
  pass "access log: every request over TLSv1.2/TLSv1.3"
else
  fail "access log: a request without TLS"; printf '%s\n' "$TLSLOG" | awk 'NF && $4 != "TLSv1.2" && $4 != "TLSv1.3"' | head
fi
PLAIN=$(grep -a '"lurl-tls-plain-http"$' "$T/access.log")
if [ "$(printf '%s\n' "$PLAIN" | grep -c ' 400 ')" -eq 1 ] && echo "$PLAIN" | grep -q "^$PORT_A "; then
  pass "access log: the plain HTTP request to the TLS port got 400"
else
  fail "access log: want one 400 for the plain HTTP request"; printf '%s\n' "$PLAIN"
fi
# (nginx logs the ClientHello's bytes as the request line: grep -a)
PLAIN_PORT=$(grep -a "^$PORT_P " "$T/access.log")
if [ "$(printf '%s\n' "$PLAIN_PORT" | grep -ac '" 400 ')" -eq 1 ] \
   && [ "$(printf '%s\n' "$PLAIN_PORT" | grep -c '"GET /info HTTP/1.1" 200 ')" -eq 1 ]; then
  pass "access log: plain HTTP port: 400 for the TLS ClientHello, 200 for plain HTTP"
else
  fail "access log: want one 400 and one 200 on the plain HTTP port"; printf '%s\n' "$PLAIN_PORT" | cut -c1-200
fi
# The only 400s allowed: those two, and the request without a client
# certificate on (b) (User-Agent lurl-tls-no-client-cert).
NOCERT=$(grep -a '"lurl-tls-no-client-cert"$' "$T/access.log")
if [ "$(printf '%s\n' "$NOCERT" | grep -c ' 400 ')" -eq 1 ] && echo "$NOCERT" | grep -q "^$PORT_B "; then
  pass "access log: the request without a client certificate got 400 on the client-cert server"
else
  fail "access log: want one 400 for the request without a client certificate"; printf '%s\n' "$NOCERT"
fi
if grep -a '" 400 ' "$T/access.log" | grep -v -e '"lurl-tls-no-client-cert"$' -e '"lurl-tls-plain-http"$' -e "^$PORT_P " | grep -q .; then
  fail "access log: nginx answered 400 Bad Request"; grep -a '" 400 ' "$T/access.log" | head
else
  pass "access log: no other 400 responses"
fi
CN=$(grep -a '"GET /client HTTP/1.1" 200 ' "$T/access.log")
if [ "$(printf '%s\n' "$CN" | grep -c .)" -eq 4 ] && [ "$(printf '%s\n' "$CN" | awk '$5 == "r"' | wc -l)" -eq 2 ]; then
  pass "access log: 4 requests with client certificates answered 200, 2 on resumed sessions"
else
  fail "access log: want 4 requests with client certificates answered 200, 2 resumed"; printf '%s\n' "$CN"
fi
T12=$(grep -a '"lurl-tls12"$' "$T/access.log")
if [ "$(printf '%s\n' "$T12" | grep -c .)" -eq 4 ] && ! printf '%s\n' "$T12" | grep -qv "^$PORT_C [0-9]* [0-9]* TLSv1.2 " \
   && [ "$(printf '%s\n' "$T12" | awk '$5 == "r"' | wc -l)" -eq 2 ]; then
  pass "access log: TLSv1.2 server: 4 requests over TLSv1.2, the second connection's 2 resumed"
else
  fail "access log: TLSv1.2 server: unexpected requests"; printf '%s\n' "$T12"
fi
check_error_log "error|alert|crit|emerg"

stop_server
END=$(date +%s.%N)
echo "interop_tls: $PASSED passed, $FAILED failed ($(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", b - a }') s)"
[ "$FAILED" -eq 0 ]
