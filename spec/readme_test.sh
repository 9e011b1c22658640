#!/usr/bin/env bash
# The README's example runs as written: the first ```lua block of README.md
# is cut out at test time and run with the lurl binary. It fails when the
# block is missing, when lurl exits non-zero (a failed assert, an error, a
# task that failed unjoined) or when it runs past a minute.
#
# usage: bash spec/readme_test.sh path/to/lurl
# (CTest runs it from the repository root; see spec/CMakeLists.txt.)
set -u

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: bash $0 path/to/lurl" >&2
    exit 2
fi
LURL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
README=$ROOT/README.md

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
example=$tmp/readme_example.lua

# The lines between the first "```lua" fence and the fence that closes it.
awk '
    !found && /^```lua[[:space:]]*$/ { found = 1; inside = 1; next }
    inside && /^```[[:space:]]*$/ { inside = 0; exit }
    inside { print }
' "$README" >"$example"

if [[ ! -s $example ]]; then
    echo "readme_test: no \`\`\`lua block in $README" >&2
    exit 1
fi

echo "readme_test: running the first lua block of README.md ($(wc -l <"$example") lines)"
cd "$tmp" || exit 1
timeout 60 "$LURL" "$example"
rc=$?
if [[ $rc -ne 0 ]]; then
    echo "readme_test: FAILED: the README example exited with status $rc" >&2
    exit 1
fi
echo "readme_test: passed"
