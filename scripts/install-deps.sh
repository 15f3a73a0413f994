#!/usr/bin/env bash
# Installs what wsgate needs from Debian's packages; with --test also the test
# tools (Python websockets, nginx, cppcheck, clang-format, mandoc, dpkg-dev, redis-server from
# Debian; wscat from npm), with --bench also the benchmark tools (gnuplot, Node ws, perf,
# redis-server). Idempotent: it asks apt only for what is missing, and runs 'apt-get update'
# at most once.
set -euo pipefail
cd "$(dirname "$0")/.."

build_packages=(gcc make cmake pkg-config libwebsockets-dev libwebsockets-evlib-ev libev-dev libssl-dev libjansson-dev
	libconfig-dev openssl libhiredis-dev)
# mandoc lints the man pages; dpkg-dev (dpkg-shlibdeps) and file let CPack compute the
# package's Depends; systemd gives systemd-analyze and man-db man, for the package test.
# clang with libclang-rt-14-dev (libFuzzer, sanitizers) builds the fuzz harnesses (scripts/fuzz.sh);
# clang-tidy is the static check of scripts/tidy.sh.
test_packages=(python3 python3-websockets nodejs npm nginx cppcheck clang-format mandoc dpkg-dev file systemd man-db
	clang libclang-rt-14-dev clang-tidy)

# linux-perf: bench's system calls per operation (perf stat) and profiles; strace to look closer;
# redis-server: bench's cluster and history modes start their own Redis
bench_packages=(gnuplot-nox nodejs npm util-linux linux-perf strace redis-server)

# The cluster test (test_cluster.py) starts its own Redis on a loopback port.
test_packages+=(redis-server)

# The browser tests drive Debian's chromium with playwright-core from npm (below): no browser is downloaded.
test_packages+=(chromium)

want=("${build_packages[@]}")
case "${1:-}" in
--test) want+=("${test_packages[@]}") ;;
--bench) want+=("${bench_packages[@]}") ;;
esac

missing=()
for pkg in "${want[@]}"; do
	if [[ "$pkg" == nodejs || "$pkg" == npm ]] && command -v "${pkg/nodejs/node}" >/dev/null 2>&1; then
		continue # a Node.js from elsewhere on PATH serves as well
	fi
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
	echo "install-deps: installing ${missing[*]}"
	sudo_cmd=()
	[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" || "${1:-}" == "--bench" ]] &&
	[[ ! -x node_modules/.bin/wscat || ! -d node_modules/ws || ! -d node_modules/playwright-core ]]; then
	echo "install-deps: installing wscat, ws and playwright-core (npm, into ./node_modules)"
	npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
