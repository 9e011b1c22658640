# Shared by the nginx interop tests, sourced after interop/common.sh (which
# sets T, SERVER_PID and stop_server). The test defines write_conf PORT...
# to write $T/nginx.conf, using NGINX_MAIN (the top of the file) and
# NGINX_HTTP (lines for its http block), then calls start_nginx N: N free
# ports land in PORTS and nginx ($NGINX) runs on them (NGINX is unset for it:
# nginx reads a variable of that name as inherited sockets).

# Running as root, nginx workers would switch to "nobody", who cannot read
# the mktemp -d directory: keep them as the current user.
USER_LINE=
if [ "$(id -u)" -eq 0 ]; then USER_LINE="user $(id -un) $(id -gn);"; fi
mkdir -p "$T/tmp"

NGINX_MAIN="$USER_LINE
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/error.log info;
events { worker_connections 128; }"

NGINX_HTTP="client_body_temp_path $T/tmp/body;
  proxy_temp_path $T/tmp/proxy;
  fastcgi_temp_path $T/tmp/fastcgi;
  uwsgi_temp_path $T/tmp/uwsgi;
  scgi_temp_path $T/tmp/scgi;
  sendfile on;
  keepalive_timeout 30s;
  keepalive_requests 1000;
  gzip off;"

free_port() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1; then
      "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return 0
    fi
  done
  # no Python: a random high port that nothing answers on
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

all_up() {
  local p
  for p in "$@"; do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || return 1; done
}

# start_nginx N: a few tries, in case a port was taken meanwhile. Returns 1
# (having said why) when nginx would not start.
start_nginx() {
  local n=$1 attempt p up
  for attempt in 1 2 3; do
    PORTS=()
    for _ in $(seq "$n"); do
      p=$(free_port) || { echo "no free port found"; return 1; }
      PORTS+=("$p")
    done
    [ "$(printf '%s\n' "${PORTS[@]}" | sort -u | wc -l)" -eq "$n" ] || continue
    write_conf "${PORTS[@]}"
    if ! env -u NGINX "$NGINX" -t -p "$T" -e "$T/error.log" -c "$T/nginx.conf" >"$T/configtest.log" 2>&1; then
      cat "$T/configtest.log"; echo "nginx -t rejects the generated config"; return 1
    fi
    : > "$T/error.log"
    env -u NGINX "$NGINX" -p "$T" -e "$T/error.log" -c "$T/nginx.conf" >>"$T/nginx.out" 2>&1 &
    SERVER_PID=$!
    up=0
    for _ in $(seq 100); do          # up to ~10 s
      kill -0 "$SERVER_PID" 2>/dev/null || break
      if all_up "${PORTS[@]}"; then up=1; break; fi
      sleep 0.1
    done
    [ "$up" -eq 1 ] && return 0
    echo "nginx did not come up on ports ${PORTS[*]} (attempt $attempt):"; tail -n 5 "$T/error.log" "$T/nginx.out" 2>/dev/null
    stop_server
  done
  return 1
}

# check_error_log LEVELS: a pass or a fail for nginx's error log holding no
# line at these levels (an extended regex such as "alert|crit|emerg").
check_error_log() {
  if grep -aE "\[($1)\]" "$T/error.log" >/dev/null; then
    fail "error.log has [$1] lines"; grep -aE "\[($1)\]" "$T/error.log" | head
  else
    pass "error.log: no [$1] lines"
  fi
}

# check_keepalive_log UA FIELD WHAT: the access log lines whose User-Agent
# is UA must be 20 requests on one connection (its id in field FIELD of the
# log format); WHAT names the connection in the pass line. Leaves the lines
# in KA for the caller's own checks.
check_keepalive_log() {
  KA=$(grep -a "\"$1\"\$" "$T/access.log" 2>/dev/null)
  local n conns
  n=$(printf '%s\n' "$KA" | grep -c . )
  conns=$(printf '%s\n' "$KA" | awk -v f="$2" 'NF { print $f }' | sort -u | wc -l)
  if [ "$n" -eq 20 ] && [ "$conns" -eq 1 ]; then
    pass "access log: 20 keep-alive requests on 1 $3"
  else
    fail "access log: want 20 requests on 1 connection, got $n requests on $conns connection(s)"
  fi
}
