#!/usr/bin/env bash
# Installs dependencies, builds, and runs wsgate in the foreground on the
# default configuration (conf/wsgate.conf: ws://127.0.0.1:8080/ws).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/wsgate -c conf/wsgate.conf "$@"
