#!/usr/bin/env bash
# Run one fuzz target for a while and say what it found:
#   fuzz/run.sh BINARY TARGET SECONDS WORKDIR [--fresh]
# The inputs: the working corpus WORKDIR/corpus/TARGET (emptied first with
# --fresh), fuzz/regressions/TARGET (replayed first: one that still crashes
# fails the run), fuzz/seeds/TARGET and seeds made from spec/vectors (a
# folder that is missing is skipped). Crash files go to
# WORKDIR/findings/TARGET/, libFuzzer's output to WORKDIR/logs/TARGET.log.
# Prints one summary line (and the report of a crash); exits 1 on a finding.
set -euo pipefail
bin=$1 target=$2 seconds=$3 work=$4 fresh=${5:-}
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz_dir")

# max_len: a response head and some body; a compressed body past the 64 KiB
# slice lurl.decompress feeds at once; a few cookie lines; a long URL pair.
case $target in
  h1_response) max_len=16384 vectors=(h1-hostile) ;;
  decompress) max_len=65540 vectors=(h1-hostile) ;;
  set_cookie) max_len=4096 vectors=(cookies) ;;
  url) max_len=4096 vectors=(url) ;;
  *) echo "run.sh: unknown target '$target'" >&2; exit 2 ;;
esac

corpus=$work/corpus/$target findings=$work/findings/$target gen=$work/vector-seeds/$target
log=$work/logs/$target.log
if [ "$fresh" = --fresh ]; then rm -rf "$corpus"; fi
rm -rf "$gen"
mkdir -p "$corpus" "$findings" "$gen" "$work/logs"

files=()
for v in "${vectors[@]}"; do
  if [ -d "$root/spec/vectors/$v" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(find "$root/spec/vectors/$v" -type f | sort)
  fi
done
luajit "$fuzz_dir/seeds.lua" "$target" "$gen" "${files[@]}" >/dev/null

inputs=("$corpus")
for d in "$fuzz_dir/regressions/$target" "$fuzz_dir/seeds/$target" "$gen"; do
  if [ -d "$d" ]; then inputs+=("$d"); fi
done
options=(-max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout=25
  -print_final_stats=1 -artifact_prefix="$findings/")
if [ -f "$fuzz_dir/$target.dict" ]; then options+=(-dict="$fuzz_dir/$target.dict"); fi

marker=$work/logs/$target.started
touch "$marker"
started=$SECONDS rc=0
"$bin" "${options[@]}" "${inputs[@]}" >"$log" 2>&1 || rc=$?
took=$((SECONDS - started))

found=$(find "$findings" -newer "$marker" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
  -o -name 'oom-*' \) | sort)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' "$log" | tail -1)
new=$(find "$corpus" -type f | wc -l)
echo "fuzz $target: ${runs:-?} runs (${speed:-?}/s) in $took s, corpus ${corp:-?} inputs" \
  "($new files in $corpus), $(printf '%s' "$found" | grep -c . || true) findings"
if [ -n "$found" ] || [ "$rc" != 0 ]; then
  sed -n '/^==[0-9]*==ERROR\|^lurl fuzz:\|runtime error:/,$p' "$log" | head -60
  for f in $found; do echo "  finding: $f (replay: $bin $f)"; done
  if [ -z "$found" ]; then echo "  libFuzzer exited with $rc: see $log"; fi
  exit 1
fi
