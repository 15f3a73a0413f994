#!/usr/bin/env bash
# Builds the libFuzzer harnesses of test/fuzz with clang (-fsanitize=fuzzer,
# address,undefined) in build-fuzz/ and runs each for SECONDS (default 20)
# against a scratch copy of its seed corpus test/fuzz/corpus/<harness>/.
# Fails on any crash, leak, sanitizer report or invariant failure; the input
# that failed is kept in build-fuzz/fuzz-artifacts/.
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || {
	echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS...]" >&2
	exit 2
}
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
	harnesses=(fuzz_config fuzz_message fuzz_handshake fuzz_closecode fuzz_api_body fuzz_channel fuzz_redis_url)
fi

build="build-fuzz"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DWSGATE_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target fuzzers >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS="suppressions=$PWD/test/fuzz/lsan.supp:print_suppressions=0"
artifacts="$PWD/$build/fuzz-artifacts"
mkdir -p "$artifacts"
# fuzz_config writes its input to a file in a directory of its own under TMPDIR
export TMPDIR="$PWD/$build/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
failed=()
for name in "${harnesses[@]}"; do
	scratch="$build/fuzz-corpus/$name"
	rm -rf "$scratch"
	mkdir -p "$scratch"
	cp test/fuzz/corpus/"$name"/* "$scratch"/
	log="$build/fuzz-$name.log"
	start=$SECONDS
	extra=()
	# libconfig leaks a string token on many syntax errors (test/fuzz/lsan.supp): a leak check
	# after each such input costs 4/5 of the run. Leaks are still checked once, at exit.
	[[ "$name" == fuzz_config ]] && extra=(-detect_leaks=0)
	# -timeout: one input may take 5 s at most (a hang is a failure too)
	if "$build/test/fuzz/$name" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -max_len=4096 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$name-" "${extra[@]}" "$scratch" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz: $name ok: ${runs:-?} runs in $((SECONDS - start)) s"
	else
		echo "fuzz: $name FAILED (log: $log):"
		grep -E "ERROR|invariant failed|SUMMARY|Test unit written|^ *#[0-9]+ " "$log" | head -30
		failed+=("$name")
	fi
done
if ((${#failed[@]})); then
	echo "fuzz: failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: all ${#harnesses[@]} harnesses ran ${seconds} s each without a failure"
