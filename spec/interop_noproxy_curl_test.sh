#!/usr/bin/env bash
# Interop: lurl.proxy_env decides proxy-or-direct as Debian's curl does, for
# the NO_PROXY values and proxy variables of spec/unit/noproxy_cases.lua
# (the unit spec reads the same table; where lurl departs from curl 7.88 on
# purpose, the table says what curl does and why).
#   bash spec/interop_noproxy_curl_test.sh <path-to-lurl>     (from the repo root)
# spec/interop/noproxy_peer.py runs two fake proxies and a fake origin on
# 127.0.0.1; spec/interop/noproxy_client.lua runs curl once per case with
# only that case's variables and --connect-to to the origin, so whatever
# curl decides it connects to loopback only. Where unshare and ip are there
# (root), everything runs in a network namespace of its own that has only
# loopback, so not even a mistake could reach another address
# (LURL_NOPROXY_NETNS=off runs it without one).
set -u

LURL=${1:?usage: bash spec/interop_noproxy_curl_test.sh <path-to-lurl>}
CURL=${CURL:-$(command -v curl || true)}
PY=${PYTHON:-/usr/bin/python3}
if [ -z "$CURL" ] || [ ! -x "$CURL" ]; then
  echo "SKIPPED: curl not installed"
  exit 0
fi
if [ ! -x "$PY" ]; then
  echo "SKIPPED: $PY not found (it runs the fake proxies)"
  exit 0
fi
if [ -z "${LURL_NOPROXY_NETNS:-}" ] && command -v unshare >/dev/null && command -v ip >/dev/null \
   && unshare -n ip link set lo up 2>/dev/null; then
  # shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
  exec unshare -n env LURL_NOPROXY_NETNS=inside bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/interop/common.sh" noproxy-curl
SERVER_LOG="$T/peer.err"

"$PY" -u spec/interop/noproxy_peer.py "$T/peer.log" >"$T/peer.out" 2>"$SERVER_LOG" &
SERVER_PID=$!
PORTS=
for _ in $(seq 100); do          # up to ~10 s for the ports line
  PORTS=$(head -n 1 "$T/peer.out" 2>/dev/null)
  case $PORTS in *[0-9]" "*[0-9]" "*[0-9]) break ;; *) PORTS= ;; esac
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORTS" ]; then
  fail "fake proxies did not start"; echo "0 passed, 1 failed"; exit 1
fi
: >"$T/peer.log"
read -r PORT_A PORT_B PORT_O <<<"$PORTS"
echo "$("$CURL" --version | head -n 1 | cut -d' ' -f1-2); proxies on 127.0.0.1:$PORT_A and :$PORT_B," \
  "origin on :$PORT_O$([ "${LURL_NOPROXY_NETNS:-}" = inside ] && echo " (own network namespace)")"

if timeout 180 "$LURL" spec/interop/noproxy_client.lua "$PORT_A" "$PORT_B" "$PORT_O" "$T/peer.log" "$CURL"; then
  pass "noproxy_client.lua"
else
  fail "noproxy_client.lua (exit status $?)"
fi
if grep -q Traceback "$SERVER_LOG"; then
  fail "the fake proxies logged errors"; head -20 "$SERVER_LOG"
else
  pass "the fake proxies logged no errors"
fi

stop_server
echo "interop_noproxy_curl: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
