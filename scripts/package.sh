#!/usr/bin/env bash
# Builds the Debian package wsgate_<version>_<arch>.deb with CPack, in a build
# directory of its own configured for the system layout (/usr, /etc,
# /lib/systemd/system), and prints the package's path on the last line.
#   scripts/package.sh [BUILD_DIR]      default BUILD_DIR: build-pkg/
# Needs dpkg-dev (dpkg-shlibdeps computes Depends) and file: scripts/install-deps.sh --test.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-pkg}
mkdir -p "$dir"
log="$dir/package.log"
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "package.sh: failed: $*" >&2; exit 1; }; }
quiet cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	-DCMAKE_INSTALL_SYSCONFDIR=/etc -DWSGATE_SYSTEMD_UNITDIR=/lib/systemd/system \
	-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON
# Only what is installed (not the tests and benchmarks): cpack builds nothing itself.
quiet cmake --build "$dir" -j"$(nproc)" --target wsgate wsgate_man wsgate_installed_conf
rm -f "$dir"/wsgate_*.deb
quiet cpack -G DEB --config "$dir/CPackConfig.cmake" -B "$dir"
debs=("$dir"/wsgate_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "package.sh: cpack made no single wsgate_*.deb in $dir" >&2; exit 1; }
realpath "${debs[0]}"
