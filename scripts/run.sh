#!/usr/bin/env bash
# Installs dependencies, builds, and runs wsgate in the foreground on the
# default configuration (conf/wsgate.conf: ws://127.0.0.1:8080/ws and
# wss://127.0.0.1:8443/ws with development certificates from scripts/gen-certs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
scripts/gen-certs.sh # the default config's wss listener; kept when present
chmod o-rwx conf/wsgate.conf # it holds tokens, git checks it out 644, and wsgate refuses it open to others
exec build/wsgate -c conf/wsgate.conf "$@"
