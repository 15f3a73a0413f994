#!/usr/bin/env bash
# Installs dependencies and test tools, builds, and runs the whole suite twice:
# once on a normal build and once under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs=$(nproc)
scripts/gen-certs.sh # conf/wsgate.conf's wss listener, checked by the tests

echo "== static checks: clang-format, cppcheck"
sources=$(git ls-files '*.c' '*.h' 2>/dev/null || find app protocols test -name '*.[ch]')
clang-format --dry-run --Werror $sources
cppcheck --enable=warning,performance,portability --error-exitcode=1 --quiet --inline-suppr \
	--suppress=missingIncludeSystem -I app -I protocols app protocols

echo "== build and test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
(cd build && ctest --output-on-failure -j"$jobs")

echo "== Debian package: build, inspect, install, run as wsgate, remove, purge (root; restores the machine)"
if [[ $(id -u) -eq 0 ]]; then test/package/test_package.sh; else sudo test/package/test_package.sh; fi

echo "== build and test under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWSGATE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87
export WSGATE_TEST_SANITIZED=1 # tests skip RSS bounds: ASan quarantines freed memory
(cd build-asan && ctest --output-on-failure -j"$jobs")

echo "== benchmark smoke (every mode and peer, about 50 s; the full run is scripts/bench.sh)"
scripts/bench.sh --smoke

# -- fuzzing and clang-tidy (issue 16): scripts/tidy.sh, scripts/fuzz.sh ----------
echo "== clang-tidy over app/ and protocols/ (checks in .clang-tidy)"
scripts/tidy.sh
echo "== fuzz: each harness of test/fuzz for 20 s (about 2 minutes)"
scripts/fuzz.sh 20
