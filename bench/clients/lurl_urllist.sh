#!/usr/bin/env bash
# lurl --fetch: W14's URL list (BENCH_FILE) as a user runs the command
# (docs/batch.md): -c BENCH_CONNS, -t BENCH_TIMEOUT (total), JSON lines to a
# file, c-ares (its default). One outcome line per URL to BENCH_OUTCOMES:
# the status (when no error came with it), or from the error's kind a timeout (any *Timeout* kind) or a
# refused connection (ECONNREFUSED). Its time is the process's wall time.
# Prints requests, seconds, cpu_seconds and rss_kb.
# shellcheck source=bench/clients/lib.sh
. "$(dirname "$0")/lib.sh"
# exit status 3: some URLs got no answer, as a slow or refused one must
st=0
measure "$BENCH_LURL" --fetch -q -c "$BENCH_CONNS" -t "$BENCH_TIMEOUT" -a "$BENCH_FILE" -o "$OUT/lines.jsonl" || st=$?
[ "$st" = 0 ] || [ "$st" = 3 ] || fail "lurl --fetch exited $st"
jq -r '.url + " " + if .error == null then (.status | tostring)
  elif (.error.kind | test("Timeout")) then "timeout"
  elif (.error.message | test("ECONNREFUSED")) then "refused"
  else "error:" + .error.kind end' "$OUT/lines.jsonl" > "$BENCH_OUTCOMES"
json requests="$(wc -l < "$BENCH_FILE")" seconds="$ELAPSED"
