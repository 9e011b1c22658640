#!/usr/bin/env bash
# The fetch command as a user runs it (lurl --fetch): URLs on standard input
# and in a file, -o, Ctrl-C in the middle of a run (exit 130, whole lines,
# the summary), the progress display on a terminal (under script(1)) and as
# plain lines, 4 shards under GNU parallel whose outputs together hold one
# line per URL, and a run killed half way then resumed. The server is a
# lurl.testing.server in a second lurl process on a free loopback port.
#
# usage: bash spec/fetch_cli_test.sh path/to/lurl
set -u

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: bash $0 path/to/lurl" >&2
    exit 2
fi
LURL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

tmp=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
fail() {
    echo "FAIL: $*" >&2
    failed=$((failed + 1))
}
pass() { echo "ok: $*"; }

# The server: /ok answers at once, /slow after 0.5 s. It writes its port to
# a file once it listens, and runs until killed.
PORT_FILE=$tmp/port "$LURL" -e '
local lurl = require "lurl"
local srv = lurl.testing.server { routes = {
  ["/ok"] = function() return { body = "ok" } end,
  ["/slow"] = function() return { delay = 0.5, body = "slow" } end,
} }
local f = assert(io.open(os.getenv("PORT_FILE"), "w"))
f:write(srv:url("/"):match(":(%d+)/"))
f:close()
lurl.sleep(3600)' 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null)
[[ -n $port ]] || { echo "the test server did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
base="http://127.0.0.1:$port"

# list N PATH FILE: N distinct URLs of PATH, with a comment and a blank line.
list() {
    { echo "# $1 URLs"; echo; for i in $(seq "$1"); do echo "$base$2?n=$i"; done; } >"$3"
}

# lines_ok FILE N: FILE holds N lines, each a JSON object, with N distinct URLs.
lines_ok() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "the file ends in the middle of a line"
urls = [json.loads(l)["url"] for l in lines[:-1]]
assert len(urls) == int(sys.argv[2]), f"{len(urls)} lines, expected {sys.argv[2]}"
assert len(set(urls)) == len(urls), "a URL has two lines"
EOF
}

# ---- input from standard input and from a file, -o ----
list 50 /ok "$tmp/ok.txt"
timeout 60 "$LURL" --fetch -q <"$tmp/ok.txt" >"$tmp/stdin.jsonl"
rc=$?
if [[ $rc == 0 ]] && lines_ok "$tmp/stdin.jsonl" 50; then pass "stdin"; else fail "stdin (exit $rc)"; fi

timeout 60 "$LURL" --fetch -q -a "$tmp/ok.txt" -o "$tmp/file.jsonl" >"$tmp/stdout" </dev/null
rc=$?
if [[ $rc == 0 && ! -s $tmp/stdout ]] && lines_ok "$tmp/file.jsonl" 50; then
    pass "-a FILE -o FILE"
else
    fail "-a FILE -o FILE (exit $rc)"
fi

timeout 60 "$LURL" --fetch -q "http://127.0.0.1:1/" "$base/ok" >/dev/null
rc=$?
[[ $rc == 3 ]] && pass "exit 3 when a URL got no answer" || fail "refused URL: exit $rc, expected 3"

# ---- Ctrl-C: exit 130, whole lines, the summary ----
list 200 /slow "$tmp/slow.txt"
"$LURL" --fetch -c 10 -a "$tmp/slow.txt" -o "$tmp/int.jsonl" 2>"$tmp/int.err" </dev/null &
pid=$!
sleep 1.3
kill -INT "$pid"
wait "$pid"
rc=$?
n=$(wc -l <"$tmp/int.jsonl")
if [[ $rc == 130 ]] && ((n > 0 && n < 200)) && lines_ok "$tmp/int.jsonl" "$n" &&
    grep -q "interrupted after $n of 200 URLs" "$tmp/int.err"; then
    pass "SIGINT: exit 130, $n whole lines, summary"
else
    fail "SIGINT: exit $rc, $n lines; stderr: $(cat "$tmp/int.err")"
fi

# ---- progress: redrawn on a terminal, plain lines otherwise ----
list 40 /slow "$tmp/prog.txt"
timeout 60 script -q -e -c "'$LURL' --fetch -c 10 --interval 0.2 -a '$tmp/prog.txt' -o '$tmp/prog.jsonl'" \
    /dev/null >"$tmp/tty.out" </dev/null
rc=$?
if [[ $rc == 0 ]] && grep -q $'\r\e\\[K[0-9]*/40 [0-9]*/s ETA' "$tmp/tty.out" &&
    grep -q "lurl: 40 of 40 URLs in" "$tmp/tty.out"; then
    pass "progress on a terminal"
else
    fail "progress on a terminal (exit $rc): $(cat -v "$tmp/tty.out" | head -5)"
fi
timeout 60 "$LURL" --fetch -c 10 --interval 0.2 -a "$tmp/prog.txt" -o /dev/null 2>"$tmp/plain.err" </dev/null
if grep -q "^lurl: [0-9]*/40 [0-9]*/s ETA" "$tmp/plain.err" && ! grep -q $'\r' "$tmp/plain.err" &&
    [[ $(tail -1 "$tmp/plain.err") == "lurl: 40 of 40 URLs in"* ]]; then
    pass "plain progress lines"
else
    fail "plain progress lines: $(cat "$tmp/plain.err")"
fi

# ---- 4 shards under GNU parallel: one line per URL in all ----
list 400 /ok "$tmp/many.txt"
if command -v parallel >/dev/null; then
    timeout 120 parallel -j4 "'$LURL'" --fetch -q --shard {}/4 -a "$tmp/many.txt" -o "$tmp/shard.{}.jsonl" \
        ::: 0 1 2 3 </dev/null
    rc=$?
    cat "$tmp"/shard.*.jsonl >"$tmp/union.jsonl"
    if [[ $rc == 0 ]] && lines_ok "$tmp/union.jsonl" 400; then
        pass "4 shards under parallel"
    else
        fail "4 shards under parallel (exit $rc)"
    fi
else
    fail "GNU parallel is not installed (Debian package parallel)"
fi

# ---- killed half way (SIGKILL: no clean-up at all), then resumed ----
list 200 /slow "$tmp/resume.txt"
"$LURL" --fetch -q -c 20 -a "$tmp/resume.txt" -o "$tmp/resume.jsonl" </dev/null &
pid=$!
sleep 2.2
kill -KILL "$pid"
wait "$pid" 2>/dev/null
half=$(wc -l <"$tmp/resume.jsonl")
timeout 60 "$LURL" --fetch -q -c 20 -a "$tmp/resume.txt" --resume "$tmp/resume.jsonl" -o "$tmp/resume.jsonl" </dev/null
rc=$?
if [[ $rc == 0 ]] && ((half > 0 && half < 200)) && lines_ok "$tmp/resume.jsonl" 200; then
    pass "killed after $half of 200, resumed: one line per URL"
else
    fail "resume (exit $rc, $half lines before)"
fi

((failed == 0)) || exit 1
echo "all fetch CLI checks passed"
