#!/usr/bin/env bash
# `cmake --install` into a staging directory (DESTDIR), no root needed (ctest
# runs it as package.install):
#   test_install.sh BUILD_DIR BINDIR CONFDIR UNITDIR DOCDIR MANDIR WWWDIR
# (the full paths the build was configured with). Checks every installed file,
# the configuration's mode, that `wsgate -t` passes on the installed
# configuration, that its listen_tls group, uncommented with certificates in
# CONFDIR/certs/, passes too (its relative paths resolve from the installed
# place), and that installing again keeps an edited configuration.
set -euo pipefail
build=$1 bindir=$2 confdir=$3 unitdir=$4 docdir=$5 mandir=$6 wwwdir=$7
repo=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d /tmp/wsgate-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() {
	echo "test_install: FAIL: $*" >&2
	exit 1
}

DESTDIR=$stage cmake --install "$build" >"$stage.log" 2>&1 || { cat "$stage.log"; fail "cmake --install"; }
rm -f "$stage.log"
expected="$bindir/wsgate
$confdir/wsgate.conf
$unitdir/wsgate.service
$docdir/README.md
$docdir/nginx/wsgate.conf
$docdir/nginx/wsgate-upstream.conf
$mandir/man8/wsgate.8.gz
$mandir/man5/wsgate.conf.5.gz"
if [[ -d $repo/www ]]; then
	expected+=$'\n'$(cd "$repo/www" && find . -type f | sed "s|^\./|$wwwdir/|")
fi
got=$(cd "$stage" && find . -type f | sed 's|^\.||' | sort)
diff -u <(sort <<<"$expected") <(echo "$got") || fail "installed files differ"
echo "ok - installed files: $(wc -l <<<"$got")"

[[ $(stat -c %a "$stage$confdir/wsgate.conf") == 640 ]] || fail "configuration mode $(stat -c %a "$stage$confdir/wsgate.conf")"
grep -qx "ExecStart=$bindir/wsgate -c $confdir/wsgate.conf" "$stage$unitdir/wsgate.service" || fail "the unit's ExecStart"
grep -qx "ReadOnlyPaths=$confdir" "$stage$unitdir/wsgate.service" || fail "the unit's ReadOnlyPaths"
cmp -s "$repo/README.md" "$stage$docdir/README.md" || fail "README differs"
echo "ok - configuration mode 640; the unit names $bindir/wsgate and $confdir"

wsgate=$stage$bindir/wsgate
conf=$stage$confdir/wsgate.conf
grep -qx "  root = \"$wwwdir\";" "$conf" || fail "http.root is not $wwwdir"
staged=$stage$confdir/staged.conf
sed "s|^  root = \"$wwwdir\";|  root = \"$stage$wwwdir\";|" "$conf" >"$staged"
chmod 640 "$staged" # as installed: it holds tokens
out=$("$wsgate" -t -c "$staged" 2>&1) || fail "wsgate -t on the installed configuration: $out"
[[ $out == "configuration $staged is ok" ]] || fail "wsgate -t printed: $out"
chmod 644 "$staged"
out=$("$wsgate" -t -c "$staged" 2>&1) && fail "wsgate -t passes on a configuration readable by others"
[[ $out == "$staged: holds tokens or API keys and is accessible by others (mode 0644); chmod o-rwx it"* ]] ||
	fail "wsgate -t on a 644 configuration printed: $out"
chmod 640 "$staged"
! grep -q '^[^#]*"\.\./' "$conf" || fail "a ../ path is active in the installed configuration"
grep -q '^# listen_tls = {' "$conf" || fail "listen_tls is not commented out"
echo "ok - wsgate -t passes on the installed configuration"

# The documented way to turn on wss: certificates in CONFDIR/certs/, group uncommented.
"$repo/scripts/gen-certs.sh" "$stage$confdir/certs" >/dev/null
sed -e '/^# listen_tls = {/,/^# };/s/^# \{0,1\}//' "$staged" >"$stage$confdir/tls.conf"
chmod 640 "$stage$confdir/tls.conf"
grep -q '^  cert = "certs/server.crt";' "$stage$confdir/tls.conf" || fail "no cert = \"certs/server.crt\" in listen_tls"
out=$("$wsgate" -t -c "$stage$confdir/tls.conf" 2>&1) || fail "wsgate -t with listen_tls and CONFDIR/certs: $out"
mv "$stage$confdir/certs" "$stage$confdir/certs.away"
! "$wsgate" -t -c "$stage$confdir/tls.conf" >/dev/null 2>&1 || fail "wsgate -t passes without the certificates"
echo "ok - listen_tls uncommented resolves certs/ in $confdir"

echo "# edited" >>"$conf"
out=$(DESTDIR=$stage cmake --install "$build" 2>&1) || fail "second cmake --install: $out"
grep -q "Keeping existing: $conf" <<<"$out" || fail "no 'Keeping existing' on reinstall: $out"
[[ $(tail -n 1 "$conf") == "# edited" ]] || fail "a second install overwrote the configuration"
echo "ok - a second install keeps the edited configuration"
