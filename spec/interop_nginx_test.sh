#!/usr/bin/env bash
# Interop: lurl against a real nginx started (and stopped) by this test.
#   bash spec/interop_nginx_test.sh <path-to-lurl>     (from the repo root)
# nginx runs as the current user, from a generated config in a temp dir, on a
# free 127.0.0.1 port. The client side is spec/interop/nginx_client.lua; this
# script adds checks on nginx's access log (keep-alive as nginx saw it).
set -u

LURL=${1:?usage: bash spec/interop_nginx_test.sh <path-to-lurl>}
NGINX=${NGINX:-/usr/sbin/nginx}
if [ ! -x "$NGINX" ]; then
  echo "SKIPPED: nginx not installed ($NGINX not found)"
  exit 0
fi
STOP_SIGNAL=QUIT
. "$(dirname "$0")/interop/common.sh" nginx
. spec/interop/nginx.sh
SERVER_LOG="$T/error.log"

# ---- the document root ----
WWW=$T/www
mkdir -p "$WWW/static" "$WWW/ssi" "$WWW/dav"
printf 'hello from nginx\n' > "$WWW/static/hello.txt"
printf 'included part: 0123456789\n' > "$WWW/static/part.txt"
head -c 1048576 /dev/urandom > "$WWW/static/blob.bin"
# served through SSI, so nginx cannot know the length: a chunked response
cat > "$WWW/ssi/page.shtml" <<'HTML'
<html><body>
<!--# include virtual="/static/part.txt" -->
between the includes
<!--# include virtual="/static/blob.bin" -->
<!--# include virtual="/static/part.txt" -->
</body></html>
HTML
# Compressed responses: a text file of about 1 MiB and the 1 MiB blob that
# nginx gzips on the fly (/gz/), the SSI page through the gzip filter
# (/ssi-gz/), and precompressed copies that gzip_static serves as they are
# (/gzs/; gzip stays off there, so a gzip body can only be the .gz file).
mkdir -p "$WWW/gz" "$WWW/ssi-gz" "$WWW/gzs"
head -c 786432 /dev/urandom | base64 > "$WWW/gz/text.txt"
cp "$WWW/static/blob.bin" "$WWW/gz/blob.bin"
cp "$WWW/ssi/page.shtml" "$WWW/ssi-gz/page.shtml"
cp "$WWW/gz/text.txt" "$WWW/gzs/text.txt"
gzip -9 -n -c "$WWW/gzs/text.txt" > "$WWW/gzs/text.txt.gz"
cp "$WWW/static/blob.bin" "$WWW/gzs/blob.bin"
gzip -1 -n -c "$WWW/gzs/blob.bin" > "$WWW/gzs/blob.bin.gz"
# gzip_static needs nginx's http_gzip_static_module (Debian's nginx packages
# have it); without it the client skips those checks.
GZIP_STATIC=0
GZIP_STATIC_CONF=
if "$NGINX" -V 2>&1 | grep -q -- '--with-http_gzip_static_module'; then
  GZIP_STATIC=1
  GZIP_STATIC_CONF='location /gzs/ { gzip_static on; etag on; }'
else
  echo "note: $NGINX has no gzip_static module: the gzip_static checks are skipped"
fi
write_conf() {
  local port=$1
  cat > "$T/nginx.conf" <<CONF
$NGINX_MAIN
http {
  types {
    text/html html shtml;
    text/plain txt;
    application/octet-stream bin;
  }
  default_type application/octet-stream;
  log_format interop '\$connection \$connection_requests "\$request" \$status \$body_bytes_sent "\$http_accept_encoding" "\$http_user_agent"';
  access_log $T/access.log interop;
  $NGINX_HTTP
  server {
    listen 127.0.0.1:$port;
    server_name localhost;
    root $WWW;
    client_max_body_size 16m;

    location /static/ { etag on; }
    location /ssi/ { ssi on; ssi_silent_errors off; }
    # which TCP connection (as nginx numbers them) served this request
    location = /conn { default_type text/plain; return 200 "\$connection \$connection_requests"; }
    # nginx closes the connection after every 3rd request here
    location = /conn_limited { keepalive_requests 3; default_type text/plain; return 200 "\$connection \$connection_requests"; }
    # and closes an idle connection after 1 s here
    location = /conn_short { keepalive_timeout 1s; default_type text/plain; return 200 "\$connection \$connection_requests"; }
    # POST: nginx reads the body, then proxies it to /echo_inner in a header
    # which that location sends back (the body must be one line)
    location = /echo {
      client_body_in_single_buffer on;
      client_body_buffer_size 1m;
      proxy_set_header X-Echo-Body \$request_body;
      proxy_set_header X-Echo-Type \$content_type;
      proxy_set_header X-Echo-Method \$request_method;
      proxy_pass http://127.0.0.1:$port/echo_inner;
    }
    location = /echo_inner {
      allow 127.0.0.1; deny all;
      default_type text/plain;
      add_header X-Got-Content-Type \$http_x_echo_type always;
      add_header X-Got-Method \$http_x_echo_method always;
      return 200 \$http_x_echo_body;
    }
    # a body that nginx discards: the connection must stay usable
    location = /sink { default_type text/plain; return 200 "len=\$content_length"; }
    # a body over the limit: nginx answers 413 before reading it all
    location = /small_limit { client_max_body_size 1k; default_type text/plain; return 200 "accepted"; }
    # uploads written to disk by nginx's dav module
    location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }
    # gzip on the fly: nginx's gzip filter (chunked, no Content-Length)
    location /gz/ { gzip on; gzip_types text/plain application/octet-stream; gzip_min_length 0; }
    location /ssi-gz/ { ssi on; ssi_silent_errors off; gzip on; gzip_min_length 0; }
    # precompressed: text.txt.gz served for text.txt to clients that accept gzip
    $GZIP_STATIC_CONF
  }
}
CONF
}

# ---- start nginx ----
start_nginx 1
PORT=${PORTS[0]}
if [ -z "$SERVER_PID" ]; then fail "nginx did not start"; echo "0 passed, 1 failed"; exit 1; fi
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$PORT, docroot $WWW"

# ---- the client ----
if GZIP_STATIC=$GZIP_STATIC timeout 180 "$LURL" spec/interop/nginx_client.lua "http://127.0.0.1:$PORT" "$WWW"; then
  pass "nginx_client.lua"
else
  fail "nginx_client.lua (exit status $?)"
fi

# ---- what nginx saw ----
# The client sent 20 GETs with User-Agent lurl-keepalive-check on one session:
# nginx must log one connection for all of them, requests numbered in a row.
sleep 0.2   # access log lines are written when each request finishes; let the last land
check_keepalive_log lurl-keepalive-check 1 connection
if printf '%s\n' "$KA" | awk 'NF { if (prev != "" && $2 != prev + 1) bad = 1; prev = $2 } END { exit bad }'; then
  pass "access log: connection_requests consecutive"
else
  fail "access log: connection_requests not consecutive"; printf '%s\n' "$KA" | head
fi
# Nothing the client sent may have made nginx answer 400 (a malformed request).
if grep -q '" 400 ' "$T/access.log"; then
  fail "access log: nginx answered 400 Bad Request"; grep '" 400 ' "$T/access.log" | head
else
  pass "access log: no 400 responses"
fi
# Compression as nginx saw it (the client marks requests with a query):
# lurl asked for "gzip, deflate, br, zstd" and got fewer bytes than the file;
# with auto_decompress = false it asked for nothing and got the file as is.
TEXT_SIZE=$(wc -c < "$WWW/gz/text.txt")
# log_line TARGET: "status bytes accept-encoding" of the first request for TARGET
log_line() {
  awk -F'"' -v want="GET $1 HTTP/1.1" '$2 == want { split($3, f, " "); print f[1], f[2], $4; exit }' "$T/access.log"
}
check_gzip_log() { # TARGET STATUS ACCEPT-ENCODING SMALLER|SAME
  local line status bytes ae
  line=$(log_line "$1")
  read -r status bytes ae <<<"$line"
  local size_ok=0
  if [ "$4" = SMALLER ] && [ -n "$bytes" ] && [ "$bytes" -lt "$TEXT_SIZE" ]; then size_ok=1; fi
  if [ "$4" = SAME ] && [ "$bytes" = "$TEXT_SIZE" ]; then size_ok=1; fi
  if [ "$status" = "$2" ] && [ "$ae" = "$3" ] && [ "$size_ok" -eq 1 ]; then
    pass "access log: $1 -> $status, $bytes bytes (file $TEXT_SIZE), Accept-Encoding '$ae'"
  else
    fail "access log: $1: want $2, Accept-Encoding '$3', bytes $4 than $TEXT_SIZE; got '${line:-no such request}'"
  fi
}
check_gzip_log "/gz/text.txt?whole" 200 "gzip, deflate, br, zstd" SMALLER
check_gzip_log "/gz/text.txt?noae" 200 "-" SAME
if [ "$GZIP_STATIC" -eq 1 ]; then
  check_gzip_log "/gzs/text.txt?whole" 200 "gzip, deflate, br, zstd" SMALLER
  check_gzip_log "/gzs/text.txt?noae" 200 "-" SAME
fi
check_error_log "alert|crit|emerg"

stop_server
echo "interop_nginx: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
