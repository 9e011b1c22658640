# shellcheck shell=bash
# shellcheck disable=SC2034,SC2016  # ROW_FAILED and ROW_WRAP are scripts/bench's; $0 and $@ are the inner sh's
# W14, the URL list, for scripts/bench (which sources it after
# spec/interop/nginx.sh, with T, PY, SERVER_CPU, PORTS and log set): the
# list (bench/urllist.py) over URLLIST_NAMES names that a DNS server on
# loopback answers after URLLIST_DNS_MS (spec/dns_server.py, the c-ares
# spec's server), served by the bench's nginx (200 and 404), by
# bench/slow_server.py (answers after URLLIST_DELAY s, beyond the clients'
# URLLIST_TIMEOUT) and by a port nobody listens on (refused).
#
# getaddrinfo reads the servers from /etc/resolv.conf, which has no port:
# the DNS server takes port 53 of a loopback address, and each client runs
# in a mount namespace where /etc/resolv.conf names it (ROW_WRAP, the way
# bench/dns_resolvers.sh runs its resolvers). c-ares, aiodns and glibc all
# read that file, so every client resolves through the same server.
URLLIST_NAMES=1000 URLLIST_DNS_MS=20 URLLIST_TIMEOUT=2 URLLIST_DELAY=5
DNS_PID=; SLOW_PID=; ROW_WRAP=()

# start_dns: spec/dns_server.py on port 53 of the first of a few loopback
# addresses that is free; writes $T/resolv.conf naming it
start_dns() {
  local addr
  for addr in 127.0.53.1 127.0.53.2 127.0.53.3 127.0.53.4; do
    : > "$T/dns.out"
    "${SERVER_CPU[@]}" "$PY" spec/dns_server.py --host "$addr" --port 53 --delay "$URLLIST_DNS_MS" \
      --lifetime 86400 > "$T/dns.out" 2>&1 &
    DNS_PID=$!
    for _ in $(seq 50); do [ -s "$T/dns.out" ] && break; sleep 0.1; done
    if kill -0 "$DNS_PID" 2>/dev/null && [[ $(head -n 1 "$T/dns.out") =~ ^53\  ]]; then
      echo "nameserver $addr" > "$T/resolv.conf"
      log "DNS server on $addr:53, answers after $URLLIST_DNS_MS ms (pid $DNS_PID)"
      return 0
    fi
    stop_pid "$DNS_PID"; DNS_PID=
  done
  return 1
}

start_slow() {   # PORT: bench/slow_server.py there
  "${SERVER_CPU[@]}" "$PY" bench/slow_server.py "$1" "$URLLIST_DELAY" > "$T/slow.out" 2>&1 &
  SLOW_PID=$!
  for _ in $(seq 100); do all_up "$1" && return 0; sleep 0.1; done
  return 1
}

# start_urllist: the servers and the list of BENCH_REQUESTS URLs; exports
# BENCH_FILE (the list) and BENCH_TIMEOUT, sets ROW_WRAP, or ROW_FAILED to
# why not
start_urllist() {
  local slow refused names=$(( BENCH_REQUESTS < URLLIST_NAMES ? BENCH_REQUESTS : URLLIST_NAMES ))
  if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    ROW_FAILED="needs root and unshare (a mount namespace with its own /etc/resolv.conf, port 53)"; return
  fi
  start_dns || { ROW_FAILED="spec/dns_server.py did not start: $(tail -n 1 "$T/dns.out" | cut -c1-120)"; return; }
  slow=$(free_port); refused=$(free_port)
  start_slow "$slow" || { ROW_FAILED="bench/slow_server.py did not start: $(tail -n 1 "$T/slow.out" | cut -c1-120)"; return; }
  mkdir -p "$T/www/urllist"
  head -c "$BENCH_BYTES" /dev/urandom > "$T/www/urllist/ok"
  export BENCH_FILE=$T/urls.txt BENCH_TIMEOUT=$URLLIST_TIMEOUT
  "$PY" bench/urllist.py make "$BENCH_REQUESTS" "$names" "${PORTS[0]}" "$slow" "$refused" > "$BENCH_FILE"
  log "URL list: $BENCH_REQUESTS URLs over $names names; nginx :${PORTS[0]}, slow :$slow (pid $SLOW_PID), refused :$refused"
  ROW_WRAP=(unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$T/resolv.conf")
}

# urllist_check ID: run ID's outcomes ($T/ID.outcomes, where BENCH_OUTCOMES
# pointed) against the list, as JSON (bench/urllist.py check)
urllist_check() { "$PY" bench/urllist.py check "$BENCH_FILE" "$T/$1.outcomes"; }

stop_urllist() {
  stop_pid "$DNS_PID"; stop_pid "$SLOW_PID"
  DNS_PID=; SLOW_PID=; ROW_WRAP=()
}
