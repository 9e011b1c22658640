# shellcheck shell=bash
# Real proxies for the proxy interop checks: tinyproxy, squid (Basic auth,
# and TLS on a second port) and microsocks (SOCKS5, with or without a user),
# each run by the test from its own config in the scratch directory, on
# free 127.0.0.1 ports, as the current user, and stopped by its PID. No
# system service is involved (scripts/setup keeps Debian's from starting).
#
# Source it after spec/interop/common.sh (which gives T, free_port,
# stop_pid and all_up, and whose cleanup this chains to on exit):
#   start_tinyproxy          TINYPROXY_PORT, TINYPROXY_PID, TINYPROXY_LOG
#   start_squid [CERT KEY]   SQUID_PORT, SQUID_PID, SQUID_LOG (the access log)
#                            and with CERT and KEY also SQUID_TLS_PORT (an
#                            https_port); user PROXY_USER, password PROXY_PASS
#   start_socks NAME [USER PASS]
#                            microsocks: NAME_PORT, NAME_PID, NAME_LOG
#   stop_all                 stops every peer started here
# Each start_* prints what it started, and returns 1 (having said why) when
# the peer would not come up.
#
# The logs tell how many TCP connections a client made to the proxy:
#   squid's access log (format "peers" below) has one line a request, the
#     client's address:port second, the User-Agent last: one port, one
#     connection;
#   tinyproxy's log (LogLevel Info) has a "Connect (file descriptor N)" line
#     for each connection it accepts and a "Request (file descriptor N): ..."
#     line for each request;
#   microsocks prints "client[N] ADDR: connected to HOST:PORT" for each
#     connection it relays.

PROXY_USER=lurl
PROXY_PASS=secret
PEERS=$T/peers
PEER_PIDS=()
mkdir -p "$PEERS"

# Running as root, squid gives up root for cache_effective_user (it will not
# run as root), which must then reach its own directory below T.
SQUID_USER=
if [ "$(id -u)" -eq 0 ]; then
  SQUID_USER=$(getent passwd proxy >/dev/null && echo proxy || echo nobody)
  chmod 711 "$T" "$PEERS"
fi

# peer_ports N: N distinct free ports in PEER_PORTS.
peer_ports() {
  local p
  PEER_PORTS=()
  for _ in $(seq "$1"); do
    p=$(free_port) || { echo "no free port found"; return 1; }
    PEER_PORTS+=("$p")
  done
  [ "$(printf '%s\n' "${PEER_PORTS[@]}" | sort -u | wc -l)" -eq "$1" ]
}

# peer_start NAME N PREPARE: up to three tries (a port may be taken
# meanwhile) of: N free ports in PEER_PORTS, PREPARE PORTS... writing the
# config and setting PEER_CMD, the command run in the background (output in
# $PEERS/NAME.out), waiting up to 10 s for every port to accept. PEER_PID
# is its PID, also kept in PEER_PIDS for stop_all.
peer_start() {
  local name=$1 n=$2 prepare=$3 attempt up
  for attempt in 1 2 3; do
    peer_ports "$n" || continue
    "$prepare" "${PEER_PORTS[@]}" || return 1
    "${PEER_CMD[@]}" >>"$PEERS/$name.out" 2>&1 &
    PEER_PID=$!
    PEER_PIDS+=("$PEER_PID")
    up=0
    for _ in $(seq 100); do
      kill -0 "$PEER_PID" 2>/dev/null || break
      if all_up "${PEER_PORTS[@]}"; then up=1; break; fi
      sleep 0.1
    done
    if [ "$up" -eq 1 ]; then
      echo "$name (${PEER_CMD[0]##*/}) on 127.0.0.1:${PEER_PORTS[*]}, pid $PEER_PID"
      return 0
    fi
    echo "$name did not come up on ports ${PEER_PORTS[*]} (attempt $attempt):"
    tail -n 5 "$PEERS/$name".* "$PEERS/$name"/*.log 2>/dev/null
    stop_pid "$PEER_PID"
  done
  return 1
}

# ---- tinyproxy ----
# No ConnectPort line: CONNECT is allowed to any port (the origin's is not
# 443). Info level logs every connection and request.
tinyproxy_conf() {
  cat > "$PEERS/tinyproxy.conf" <<CONF
Port $1
Listen 127.0.0.1
Timeout 30
MaxClients 64
Allow 127.0.0.1
LogFile "$PEERS/tinyproxy.log"
LogLevel Info
PidFile "$PEERS/tinyproxy.pid"
CONF
  PEER_CMD=(tinyproxy -d -c "$PEERS/tinyproxy.conf")
}

start_tinyproxy() {
  peer_start tinyproxy 1 tinyproxy_conf || return 1
  TINYPROXY_PORT=${PEER_PORTS[0]} TINYPROXY_PID=$PEER_PID TINYPROXY_LOG=$PEERS/tinyproxy.log
  export TINYPROXY_PORT TINYPROXY_PID TINYPROXY_LOG
}

# ---- squid ----
# No cache at all (cache deny all, no cache_dir), every file in
# $PEERS/squid, Basic auth required for everything (RFC 9110 section
# 11.7.1: a 407 with Proxy-Authenticate otherwise), CONNECT to any port, and
# no waiting for clients at shutdown. Debian's squid is built with GnuTLS:
# https_port takes tls-cert= and tls-key=.
SQUID_DIR=$PEERS/squid
SQUID_TLS=
squid_conf() {
  local tls_line=
  if [ -n "$SQUID_TLS" ]; then
    tls_line="https_port 127.0.0.1:$2 tls-cert=$SQUID_DIR/cert.pem tls-key=$SQUID_DIR/key.pem"
  fi
  cat > "$SQUID_DIR/squid.conf" <<CONF
http_port 127.0.0.1:$1
$tls_line
${SQUID_USER:+cache_effective_user $SQUID_USER}
cache deny all
cache_mem 8 MB
pid_filename $SQUID_DIR/squid.pid
cache_log $SQUID_DIR/cache.log
logformat peers %ts.%03tu %>a:%>p %rm %ru %>Hs %<st %un "%{User-Agent}>h"
access_log stdio:$SQUID_DIR/access.log peers
strip_query_terms off
logfile_rotate 0
cache_store_log none
coredump_dir $SQUID_DIR
pinger_enable off
shutdown_lifetime 0 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth $SQUID_DIR/passwd
auth_param basic realm lurl-test
acl authed proxy_auth REQUIRED
http_access allow authed
http_access deny all
CONF
  PEER_CMD=(squid -N -f "$SQUID_DIR/squid.conf")
}

start_squid() {
  mkdir -p "$SQUID_DIR"
  htpasswd -bc "$SQUID_DIR/passwd" "$PROXY_USER" "$PROXY_PASS" 2>/dev/null || { echo "htpasswd failed"; return 1; }
  SQUID_TLS=${1:+yes}
  if [ -n "$SQUID_TLS" ]; then cp "$1" "$SQUID_DIR/cert.pem" && cp "$2" "$SQUID_DIR/key.pem" || return 1; fi
  if [ -n "$SQUID_USER" ]; then chown -R "$SQUID_USER" "$SQUID_DIR"; fi
  peer_start squid $((${#SQUID_TLS} ? 2 : 1)) squid_conf || return 1
  SQUID_PORT=${PEER_PORTS[0]} SQUID_TLS_PORT=${PEER_PORTS[1]:-} SQUID_PID=$PEER_PID SQUID_LOG=$SQUID_DIR/access.log
  export SQUID_PORT SQUID_TLS_PORT SQUID_PID SQUID_LOG
}

# ---- microsocks ----
SOCKS_AUTH=()
socks_cmd() { PEER_CMD=(microsocks -i 127.0.0.1 -p "$1" "${SOCKS_AUTH[@]}"); }

start_socks() {
  local name=$1
  SOCKS_AUTH=()
  if [ $# -ge 3 ]; then SOCKS_AUTH=(-u "$2" -P "$3"); fi
  peer_start "$name" 1 socks_cmd || return 1
  printf -v "${name}_PORT" %s "${PEER_PORTS[0]}"
  printf -v "${name}_PID" %s "$PEER_PID"
  printf -v "${name}_LOG" %s "$PEERS/$name.out"
  export "${name}_PORT" "${name}_PID" "${name}_LOG"
}

stop_all() {
  local pid
  for pid in "${PEER_PIDS[@]}"; do stop_pid "$pid"; done
  PEER_PIDS=()
}

trap 'stop_all; cleanup' EXIT
