#!/bin/bash
# DNS at scale: N distinct names resolved at once by lurl's two resolvers,
# getaddrinfo on libuv's thread pool ("threaded", also with 64 threads) and
# c-ares on the loop ("ares"), against a local DNS server that answers every
# query after DELAY ms (spec/dns_server.py). Both read the same
# /etc/resolv.conf: the script runs itself in a mount namespace (unshare -m,
# so root) where a bind mount makes it name that server on 127.0.0.53:53.
# Three rounds, the resolvers alternating; prints each run and the medians.
#
#   bench/dns_resolvers.sh [LURL=build/lurl] [N=1000] [DELAY=20]
set -euo pipefail
cd "$(dirname "$0")/.."
LURL=${1:-build/lurl}
N=${2:-1000}
DELAY=${3:-20}

if [ "${LURL_DNS_BENCH_NS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "needs root (unshare -m, a bind mount, port 53)" >&2; exit 1; }
    exec unshare -m env LURL_DNS_BENCH_NS=1 bash "$0" "$@"
fi

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
echo "nameserver 127.0.0.53" >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf

/usr/bin/python3 spec/dns_server.py --host 127.0.0.53 --port 53 --delay "$DELAY" >"$tmp/server" &
for _ in $(seq 50); do [ -s "$tmp/server" ] && break; sleep 0.1; done
read -r _ pid <"$tmp/server"

echo "# $N distinct names, answers after $DELAY ms; kind seconds cpu_seconds resolved"
for round in 1 2 3; do
    "$LURL" bench/dns_resolvers.lua threaded "$N" "r$round-t" | tee -a "$tmp/runs"
    UV_THREADPOOL_SIZE=64 "$LURL" bench/dns_resolvers.lua threaded "$N" "r$round-t64" |
        sed 's/^threaded/threaded64/' | tee -a "$tmp/runs"
    "$LURL" bench/dns_resolvers.lua ares "$N" "r$round-a" | tee -a "$tmp/runs"
done

echo "# medians of 3: kind seconds cpu_seconds resolved"
for kind in threaded threaded64 ares; do
    med() { awk -v k="$kind" -v c="$1" '$1 == k { print $c }' "$tmp/runs" | sort -n | sed -n 2p; }
    echo "$kind $(med 2) $(med 3) $(med 4)"
done
