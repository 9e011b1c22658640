# shellcheck shell=bash
# The nginx harness of the interop tests and scripts/bench: nginx runs as
# the current user from a config written into the scratch directory T, on
# free 127.0.0.1 ports, and is started and stopped by its PID.
#
# Source it with T set (spec/interop/common.sh does, for every test). The
# caller defines write_conf PORT... to write $T/nginx.conf, using NGINX_MAIN
# (the top of the file) and NGINX_HTTP (lines for its http block), then
# calls start_nginx N: N free ports land in PORTS and nginx runs on them
# with its PID in SERVER_PID; stop_pid "$SERVER_PID" QUIT stops it.
#
# Read when sourced, all optional:
#   NGINX              the binary (default /usr/sbin/nginx)
#   NGINX_CPU          an array to start nginx under, e.g. (taskset -c 1)
#   NGINX_EVENTS       the events block's directives (default: 128 connections)
#   NGINX_NOFILE       worker_rlimit_nofile, when set
#   NGINX_ERROR_LEVEL  error_log's level (default info)

NGINX=${NGINX:-/usr/sbin/nginx}
[ -n "${NGINX_CPU+set}" ] || NGINX_CPU=()

# Running as root, nginx workers would switch to "nobody", who cannot read
# the mktemp -d directory: keep them as the current user.
NGINX_USER_LINE=
if [ "$(id -u)" -eq 0 ]; then NGINX_USER_LINE="user $(id -un) $(id -gn);"; fi

NGINX_MAIN="$NGINX_USER_LINE
worker_processes 1;
${NGINX_NOFILE:+worker_rlimit_nofile $NGINX_NOFILE;}
daemon off;
pid $T/nginx.pid;
error_log $T/error.log ${NGINX_ERROR_LEVEL:-info};
events { ${NGINX_EVENTS:-worker_connections 128;} }"

NGINX_HTTP="client_body_temp_path $T/tmp/body;
  proxy_temp_path $T/tmp/proxy;
  fastcgi_temp_path $T/tmp/fastcgi;
  uwsgi_temp_path $T/tmp/uwsgi;
  scgi_temp_path $T/tmp/scgi;
  sendfile on;
  keepalive_timeout 30s;
  keepalive_requests 1000;
  gzip off;"

# stop_pid PID [SIGNAL]: ask politely (default TERM), wait up to 5 s, then
# kill; reaps it. Only ever a process this shell started.
stop_pid() {
  [ -n "$1" ] || return 0
  if kill -0 "$1" 2>/dev/null; then
    kill -"${2:-TERM}" "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then kill -KILL "$1" 2>/dev/null || true; fi
  fi
  wait "$1" 2>/dev/null || true
}

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
  mkdir -p "$T/tmp"
  for attempt in 1 2 3; do
    PORTS=()
    for _ in $(seq "$n"); do
      p=$(free_port) || { echo "no free port found"; return 1; }
      PORTS+=("$p")
    done
    [ "$(printf '%s\n' "${PORTS[@]}" | sort -u | wc -l)" -eq "$n" ] || continue
    write_conf "${PORTS[@]}"
    # NGINX is unset for nginx itself: it reads a variable of that name as inherited sockets
    if ! env -u NGINX "$NGINX" -t -p "$T" -e "$T/error.log" -c "$T/nginx.conf" >"$T/configtest.log" 2>&1; then
      cat "$T/configtest.log"; echo "nginx -t rejects the generated config"; return 1
    fi
    : > "$T/error.log"
    "${NGINX_CPU[@]}" env -u NGINX "$NGINX" -p "$T" -e "$T/error.log" -c "$T/nginx.conf" >>"$T/nginx.out" 2>&1 &
    SERVER_PID=$!
    up=0
    for _ in $(seq 100); do          # up to ~10 s
      kill -0 "$SERVER_PID" 2>/dev/null || break
      if all_up "${PORTS[@]}"; then up=1; break; fi
      sleep 0.1
    done
    [ "$up" -eq 1 ] && return 0
    echo "nginx did not come up on ports ${PORTS[*]} (attempt $attempt):"; tail -n 5 "$T/error.log" "$T/nginx.out" 2>/dev/null
    stop_pid "$SERVER_PID" QUIT
    SERVER_PID=
  done
  return 1
}
