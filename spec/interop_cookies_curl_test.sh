#!/usr/bin/env bash
# Interop: lurl's cookie jar and Debian's curl read and write the same
# cookies.txt, and send the same Cookie headers, through a real nginx.
#   bash spec/interop_cookies_curl_test.sh <path-to-lurl>     (from the repo root)
# nginx runs as the current user, from a generated config in a temp dir, on a
# free 127.0.0.1 port: /set-cookies answers with Set-Cookie lines (add_header),
# any path ending in /echo-cookie sends back the request's Cookie header
# ($http_cookie). The checks are in spec/interop/cookies_client.lua, which
# runs curl itself (-b / -c) and compares with jar:save, jar:load and
# jar:cookie_header.
set -u

LURL=${1:?usage: bash spec/interop_cookies_curl_test.sh <path-to-lurl>}
NGINX=${NGINX:-/usr/sbin/nginx}
CURL=${CURL:-$(command -v curl || true)}
if [ ! -x "$NGINX" ]; then
  echo "SKIPPED: nginx not installed ($NGINX not found)"
  exit 0
fi
if [ -z "$CURL" ] || [ ! -x "$CURL" ]; then
  echo "SKIPPED: curl not installed"
  exit 0
fi
STOP_SIGNAL=QUIT
. "$(dirname "$0")/interop/common.sh" cookies-curl
. spec/interop/nginx.sh
SERVER_LOG="$T/error.log"

# The Set-Cookie lines must match SET_COOKIES in cookies_client.lua.
write_conf() {
  local port=$1
  cat > "$T/nginx.conf" <<CONF
$NGINX_MAIN
http {
  default_type text/plain;
  access_log $T/access.log;
  $NGINX_HTTP
  server {
    listen 127.0.0.1:$port;
    server_name localhost;
    location ~ /echo-cookie\$ { return 200 "\$http_cookie"; }
    location = /set-cookies {
      add_header Set-Cookie "host=1; Path=/";
      add_header Set-Cookie "dom=2; Domain=example.test; Path=/";
      add_header Set-Cookie "sec=3; Path=/; Secure";
      add_header Set-Cookie "ho=4; Path=/; HttpOnly; Max-Age=3600";
      add_header Set-Cookie "sub=5; Path=/sub";
      add_header Set-Cookie 'q="x y"; Path=/';
      add_header Set-Cookie "exp=6; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT";
      add_header Set-Cookie "gone=7; Path=/; Max-Age=0";
      return 200 "ok";
    }
  }
}
CONF
}

start_nginx 1
PORT=${PORTS[0]}
if [ -z "$SERVER_PID" ]; then fail "nginx did not start"; echo "0 passed, 1 failed"; exit 1; fi
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$PORT; $("$CURL" --version | head -n 1 | cut -d' ' -f1-2)"

if timeout 120 "$LURL" spec/interop/cookies_client.lua "$PORT" "$T" "$CURL"; then
  pass "cookies_client.lua"
else
  fail "cookies_client.lua (exit status $?)"
fi

# The files themselves: curl's header, and lurl's file laid out as curl's.
if head -n 1 "$T/curl-jar.txt" 2>/dev/null | grep -qx '# Netscape HTTP Cookie File' \
   && cmp -s <(head -n 4 "$T/curl-jar.txt") <(head -n 4 "$T/lurl-jar.txt"); then
  pass "lurl's cookies.txt starts with curl's header"
else
  fail "lurl's cookies.txt header differs from curl's"; head -n 4 "$T/curl-jar.txt" "$T/lurl-jar.txt" 2>&1
fi
check_error_log "alert|crit|emerg"

stop_server "$STOP_SIGNAL"
echo "interop_cookies_curl: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
