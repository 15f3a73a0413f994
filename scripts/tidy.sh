#!/usr/bin/env bash
# clang-tidy (Debian's clang-tidy 14) over app/ and protocols/ with the checks of
# .clang-tidy; fails on any finding. Compile flags come from build-tidy/'s
# compile_commands.json (configured, never built).
set -euo pipefail
cd "$(dirname "$0")/.."

# Files not checked yet: their findings are listed for their owner to fix, then
# the file leaves this list. Empty: every file is checked.
excluded=()

cmake -S . -B build-tidy -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
files=()
for f in app/*.c protocols/*.c; do
	for x in "${excluded[@]}"; do
		[[ "$f" == "$x" ]] && continue 2
	done
	files+=("$f")
done
# two at a time: the machine is shared
printf '%s\n' "${files[@]}" | xargs -P2 -n4 clang-tidy -p build-tidy --quiet 2>/dev/null
echo "tidy: ${#files[@]} files clean${excluded:+ (not checked yet: ${excluded[*]})}"
