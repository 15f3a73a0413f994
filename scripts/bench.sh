#!/usr/bin/env bash
# Benchmarks wsgate beside its peers (lws-echo, Node ws, tcp-echo, optionally uWebSockets):
# the entry point; the program is scripts/bench.py (run with Debian's /usr/bin/python3,
# standard library only). `scripts/bench.sh --help` lists the modes and options.
#   scripts/bench.sh               every mode: writes docs/bench/RESULTS.md, charts, results.json
#   scripts/bench.sh --smoke       every mode and peer, short runs, nothing written (CI)
#   scripts/bench.sh --mode echo   one mode (or several, comma-separated): prints the tables
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/bench.py" "$@"
