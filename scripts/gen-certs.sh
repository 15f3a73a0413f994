#!/usr/bin/env bash
# Makes a local CA and a server certificate for localhost / 127.0.0.1 / ::1 with
# openssl, for development and tests. Nothing it writes is committed (.gitignore).
#   scripts/gen-certs.sh [DIR]      default DIR: certs/
# Writes DIR/ca.crt, DIR/ca.key, DIR/server.crt, DIR/server.key (keys mode 600).
# Existing files are kept; remove them to make new ones.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../certs"}
mkdir -p "$dir"
cd "$dir"

if [[ -s server.crt && -s server.key && -s ca.crt ]]; then
	exit 0
fi
command -v openssl >/dev/null || { echo "gen-certs: openssl is missing (apt-get install openssl)" >&2; exit 1; }

umask 077
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-keyout ca.key -out ca.crt -days 825 -subj "/CN=wsgate local development CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
cat > server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
	-out server.crt -days 825 -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key
chmod 644 ca.crt server.crt
echo "gen-certs: wrote $(pwd)/{ca.crt,server.crt,server.key} (trust ca.crt in clients)"
