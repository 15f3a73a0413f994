#!/usr/bin/env bash
# The Debian package end to end, as root (CI runs as root; scripts/test.sh runs
# this once, after ctest):
#   1. build it (scripts/package.sh) and inspect it: name, Depends, files,
#      conffiles, maintainer scripts, no key or certificate inside;
#   2. dpkg -i: the wsgate user and group, the configuration's owner and mode,
#      nothing started or enabled; --version; `wsgate -t` on the installed
#      configuration (as root and as wsgate); the man pages; systemd-analyze
#      verify of the unit;
#   3. the installed binary, run as wsgate with a copy of the installed
#      configuration next to it (free ports, listen_tls uncommented, a test
#      certificate in /etc/wsgate/certs/, which the installed relative paths
#      name): a valid token gets 101 and the welcome (ws and wss), a bad one
#      403 with the 4003 JSON body; SIGTERM exits 0;
#   4. dpkg -r keeps /etc/wsgate and removes every other file; dpkg -P removes
#      /etc/wsgate; the wsgate user stays (Debian's convention).
# Whatever happens, the package is purged and a wsgate user or group this test
# caused is deleted again. It refuses to run where wsgate is already installed
# or /etc/wsgate exists, so it never touches a real installation.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
	echo "test_package: FAIL: $*" >&2
	exit 1
}
pass() { echo "ok - $*"; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (dpkg -i)"
if grep -q '^[ihrcuHUF]' <<<"$(dpkg-query -W -f='${db:Status-Abbrev}' wsgate 2>/dev/null)"; then
	fail "a wsgate package is already on this machine; not touching it"
fi
[[ ! -e /etc/wsgate ]] || fail "/etc/wsgate exists; not touching it"

had_user=$(getent passwd wsgate >/dev/null && echo yes || echo no)
had_group=$(getent group wsgate >/dev/null && echo yes || echo no)
work=$(mktemp -d /tmp/wsgate-package.XXXXXX)
server_pid=

cleanup() {
	local rc=$?
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if dpkg-query -W wsgate >/dev/null 2>&1; then
		dpkg -P wsgate >/dev/null 2>&1 || echo "test_package: cleanup: dpkg -P wsgate failed" >&2
	fi
	rm -rf /etc/wsgate # only ever made by this test's package (checked above)
	[[ $had_user == yes ]] || ! getent passwd wsgate >/dev/null || userdel wsgate || true
	[[ $had_group == yes ]] || ! getent group wsgate >/dev/null || groupdel wsgate || true
	rm -rf "$work"
	if [[ $rc -eq 0 ]]; then echo "test_package: PASS"; else echo "test_package: FAIL (exit $rc)" >&2; fi
}
trap cleanup EXIT

# --- 1. build and inspect -----------------------------------------------------------
version=$(sed -n 's/^project(wsgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
deb=$(scripts/package.sh "${WSGATE_PACKAGE_BUILD_DIR:-build-pkg}" | tail -n 1)
[[ $(basename "$deb") == "wsgate_${version}_${arch}.deb" ]] || fail "package name $(basename "$deb")"
[[ ! -e /etc/wsgate && ! -e /lib/systemd/system/wsgate.service && ! -e /usr/bin/wsgate ]] ||
	fail "building the package installed files onto this machine"
pass "built $(basename "$deb") (and installed nothing while building)"

[[ $(dpkg-deb -f "$deb" Package) == wsgate ]] || fail "Package field"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "Version field"
depends=$(dpkg-deb -f "$deb" Depends)
# Every shared library the binary links, as computed by dpkg-shlibdeps, and the
# libev plugin lws dlopen()s.
for pkg in libwebsockets17 libwebsockets-evlib-ev libssl3 libjansson4 libconfig9 libev4 libc6; do
	grep -Eq "(^|, )$pkg( \(|,|$)" <<<"$depends" || fail "Depends lacks $pkg: $depends"
done
pass "Depends: $depends"

listing=$(dpkg-deb -c "$deb")
awk '$1 !~ /^d/ {print $6}' <<<"$listing" | sed 's|^\./|/|' | sort >"$work/files"
expected="/etc/wsgate/wsgate.conf
/lib/systemd/system/wsgate.service
/usr/bin/wsgate
/usr/share/doc/wsgate/README.md
/usr/share/doc/wsgate/nginx/wsgate.conf
/usr/share/doc/wsgate/nginx/wsgate-upstream.conf
/usr/share/man/man5/wsgate.conf.5.gz
/usr/share/man/man8/wsgate.8.gz"
if [[ -d www ]]; then
	expected+=$'\n'$(find www -type f | sed 's|^www/|/usr/share/wsgate/www/|')
fi
diff -u <(sort <<<"$expected") "$work/files" || fail "the package's files differ from the expected list"
! grep -Eq '\.(key|pem|crt|csr|srl)$' "$work/files" || fail "a key or certificate is in the package"
grep -q '^-rw-r----- root/root .* \./etc/wsgate/wsgate\.conf$' <<<"$listing" ||
	fail "the configuration is not shipped root:root 0640"
pass "files: $(wc -l <"$work/files") as expected, no key or certificate"

dpkg-deb -e "$deb" "$work/control"
[[ $(cat "$work/control/conffiles") == /etc/wsgate/wsgate.conf ]] || fail "conffiles: $(cat "$work/control/conffiles")"
[[ -x $work/control/postinst && -x $work/control/postrm ]] || fail "postinst/postrm missing or not executable"
[[ ! -e $work/control/prerm && ! -e $work/control/preinst ]] || fail "unexpected prerm/preinst"
! grep -Eq 'systemctl +(start|stop|restart|enable|reload)|deb-systemd-invoke|invoke-rc.d' \
	"$work/control/postinst" "$work/control/postrm" || fail "a maintainer script starts, stops or enables something"
pass "conffiles /etc/wsgate/wsgate.conf; postinst and postrm start and stop nothing"

# --- 2. install -------------------------------------------------------------------------
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i"; }
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' wsgate) == "ii " ]] || fail "not installed after dpkg -i"
grep -q ':/nonexistent:/usr/sbin/nologin$' <<<"$(getent passwd wsgate)" || fail "user wsgate: $(getent passwd wsgate)"
[[ $(id -gn wsgate) == wsgate ]] || fail "user wsgate's group is $(id -gn wsgate)"
[[ $(stat -c '%U:%G %a' /etc/wsgate) == "root:wsgate 750" ]] || fail "/etc/wsgate is $(stat -c '%U:%G %a' /etc/wsgate)"
[[ $(stat -c '%U:%G %a' /etc/wsgate/wsgate.conf) == "root:wsgate 640" ]] ||
	fail "/etc/wsgate/wsgate.conf is $(stat -c '%U:%G %a' /etc/wsgate/wsgate.conf)"
pass "installed; user and group wsgate; /etc/wsgate root:wsgate 750, wsgate.conf root:wsgate 640"

# Installing again (an upgrade) keeps the administrator's edits, owner and mode.
echo "# edited by the administrator" >>/etc/wsgate/wsgate.conf
chmod 600 /etc/wsgate/wsgate.conf && chown wsgate:wsgate /etc/wsgate/wsgate.conf
dpkg -i "$deb" >"$work/dpkg-i2.log" 2>&1 || { cat "$work/dpkg-i2.log"; fail "dpkg -i over the installed package"; }
[[ $(tail -n 1 /etc/wsgate/wsgate.conf) == "# edited by the administrator" ]] || fail "reinstalling replaced the edited configuration"
[[ $(stat -c '%U:%G %a' /etc/wsgate/wsgate.conf) == "wsgate:wsgate 600" ]] ||
	fail "reinstalling changed the configuration to $(stat -c '%U:%G %a' /etc/wsgate/wsgate.conf)"
[[ $(stat -c '%U:%G %a' /etc/wsgate) == "root:wsgate 750" ]] || fail "reinstalling made /etc/wsgate $(stat -c '%U:%G %a' /etc/wsgate)"
chown root:wsgate /etc/wsgate/wsgate.conf && chmod 640 /etc/wsgate/wsgate.conf
pass "dpkg -i again keeps the edited configuration, its owner and mode"

! pgrep -u wsgate >/dev/null || fail "something runs as wsgate right after dpkg -i"
[[ ! -e /etc/systemd/system/multi-user.target.wants/wsgate.service ]] || fail "the unit was enabled"
pass "nothing started or enabled"

/usr/bin/wsgate --version >"$work/version"
[[ $(head -n 1 "$work/version") == "wsgate $version" ]] || fail "--version: $(cat "$work/version")"
[[ $(cut -d' ' -f1 "$work/version" | tr '\n' ' ') == "wsgate libwebsockets OpenSSL jansson libconfig libev " ]] ||
	fail "--version lines: $(cat "$work/version")"
pass "--version: $(tr '\n' ';' <"$work/version")"

out=$(/usr/bin/wsgate -t -c /etc/wsgate/wsgate.conf 2>&1) || fail "wsgate -t on the installed config: $out"
[[ $out == "configuration /etc/wsgate/wsgate.conf is ok" ]] || fail "wsgate -t printed: $out"
out=$(setpriv --reuid=wsgate --regid=wsgate --init-groups /usr/bin/wsgate -t -c /etc/wsgate/wsgate.conf 2>&1) ||
	fail "wsgate -t as the wsgate user: $out"
pass "wsgate -t -c /etc/wsgate/wsgate.conf: $out (as root and as wsgate)"

[[ $(man -w wsgate) == /usr/share/man/man8/wsgate.8.gz && $(man -w 5 wsgate.conf) == /usr/share/man/man5/wsgate.conf.5.gz ]] ||
	fail "man -w: $(man -w wsgate) $(man -w 5 wsgate.conf)"
for page in /usr/share/man/man8/wsgate.8.gz /usr/share/man/man5/wsgate.conf.5.gz; do
	# One file per call: mandoc 1.14.6 reads a second .gz file as if uncompressed.
	out=$(mandoc -T lint "$page" 2>&1) || fail "mandoc -T lint $page: $out"
	[[ -z $out ]] || fail "mandoc -T lint $page: $out"
done
pass "man pages found by man, mandoc -T lint silent"

out=$(systemd-analyze verify /lib/systemd/system/wsgate.service 2>&1) || fail "systemd-analyze verify: $out"
! grep -q 'wsgate' <<<"$out" || fail "systemd-analyze verify: $out"
grep -qx 'ExecStart=/usr/bin/wsgate -c /etc/wsgate/wsgate.conf' /lib/systemd/system/wsgate.service ||
	fail "the unit's ExecStart"
pass "systemd-analyze verify accepts /lib/systemd/system/wsgate.service"

# --- 3. run the installed binary as wsgate ----------------------------------------
read -r port tls_port < <(/usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
# The copy lives beside the installed file, so its relative paths resolve the
# same way: listen_tls's "certs/server.crt" is /etc/wsgate/certs/server.crt.
conf=/etc/wsgate/test-package.conf
sed -e "s/^  port = 8080;/  port = $port;/" \
	-e '/^# listen_tls = {/,/^# };/s/^# \{0,1\}//' \
	-e "/^listen_tls = {/,/^};/s/^  port = 8443;/  port = $tls_port;/" /etc/wsgate/wsgate.conf >"$conf"
for line in "  port = $port;" "  port = $tls_port;" '  cert = "certs/server.crt";'; do
	grep -qx "$line" "$conf" || fail "could not make the test copy of the configuration ($line)"
done
chown root:wsgate "$conf" && chmod 640 "$conf"
scripts/gen-certs.sh "$work/certs" >/dev/null
install -d -m 750 -o root -g wsgate /etc/wsgate/certs
install -m 644 "$work/certs/server.crt" /etc/wsgate/certs/server.crt
install -m 600 -o wsgate -g wsgate "$work/certs/server.key" /etc/wsgate/certs/server.key
out=$(setpriv --reuid=wsgate --regid=wsgate --init-groups /usr/bin/wsgate -t -c "$conf" 2>&1) ||
	fail "wsgate -t with listen_tls and certs in /etc/wsgate/certs: $out"

setpriv --reuid=wsgate --regid=wsgate --init-groups /usr/bin/wsgate -c "$conf" 2>"$work/wsgate.log" &
server_pid=$!
for _ in $(seq 50); do
	if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $tls_port), 0.2)" 2>/dev/null; then
		break
	fi
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/wsgate.log"; fail "the installed wsgate exited at start"; }
	sleep 0.1
done
[[ $(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status") == $(id -u wsgate) ]] || fail "wsgate does not run as wsgate"
/usr/bin/python3 test/package/pkg_client.py "$port" "$tls_port" "$work/certs/ca.crt" ||
	{ cat "$work/wsgate.log"; fail "clients of the installed wsgate"; }
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[[ $rc -eq 0 ]] || { cat "$work/wsgate.log"; fail "wsgate exited $rc after SIGTERM"; }
grep -q 'event=session_open .*user=alice' "$work/wsgate.log" || fail "no session_open for alice in the log"
grep -q 'event=handshake_refused .*code=4003' "$work/wsgate.log" || fail "no handshake_refused 4003 in the log"
! grep -q -e 'alice-secret' -e 'bob-secret' -e 'not-a-token' "$work/wsgate.log" || fail "a token is in the log"
pass "installed wsgate as user wsgate (ws :$port, wss :$tls_port): admits alice and bob, 403 for a bad token, exit 0 on SIGTERM"

# --- 4. remove, purge ---------------------------------------------------------------
dpkg -r wsgate >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r"; }
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' wsgate) == "rc " ]] || fail "status after dpkg -r"
while read -r path; do
	if [[ $path == /etc/wsgate/wsgate.conf ]]; then
		[[ -f $path ]] || fail "dpkg -r removed the configuration"
	else
		[[ ! -e $path ]] || fail "dpkg -r left $path"
	fi
done <"$work/files"
[[ -d /usr/share/doc/wsgate || -d /usr/share/wsgate ]] && fail "dpkg -r left a wsgate directory under /usr/share"
[[ -f /etc/wsgate/certs/server.key && -f $conf ]] || fail "dpkg -r touched files in /etc/wsgate it does not own"
pass "dpkg -r: every file gone but /etc/wsgate (configuration kept)"

dpkg -P wsgate >"$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P"; }
! dpkg-query -W wsgate >/dev/null 2>&1 || [[ $(dpkg-query -W -f='${db:Status-Abbrev}' wsgate) == "un " ]] ||
	fail "dpkg still knows wsgate after dpkg -P"
[[ ! -e /etc/wsgate ]] || fail "dpkg -P left /etc/wsgate"
getent passwd wsgate >/dev/null || fail "dpkg -P deleted the wsgate user (Debian keeps system users)"
pass "dpkg -P: /etc/wsgate gone; the wsgate user stays"
