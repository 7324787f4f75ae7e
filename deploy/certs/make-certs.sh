#!/bin/sh
# Makes a private CA, a collector server certificate and one client certificate per sensor,
# for wiretime's mutual TLS between sensors and collector (openssl only).
#
#   deploy/certs/make-certs.sh OUT_DIR COLLECTOR_HOST SENSOR_ID [SENSOR_ID …]
#
# OUT_DIR/ca.crt            give to the collector (--client-ca) and to every sensor (--tls-ca)
# OUT_DIR/collector.{crt,key}   the collector's --tls-cert/--tls-key; valid for COLLECTOR_HOST
#                           (a DNS name or an IP address), localhost and 127.0.0.1
# OUT_DIR/SENSOR_ID.{crt,key}   a sensor's --tls-cert/--tls-key; subject CN = SENSOR_ID, the only
#                           sensor id the collector lets that certificate write as
# An existing ca.key in OUT_DIR is reused, so sensors can be added later. Keys are P-256 ECDSA;
# certificates last 825 days (DAYS=… to change).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 OUT_DIR COLLECTOR_HOST SENSOR_ID [SENSOR_ID …]" >&2; exit 2; }
out=$1; host=$2; shift 2
days=${DAYS:-825}
mkdir -p "$out"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
case "$host" in
  *[!0-9.]*) case "$host" in *:*) san="IP:$host" ;; *) san="DNS:$host" ;; esac ;;
  *) san="IP:$host" ;;
esac
if [ ! -f "$out/ca.key" ]; then
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days" -subj "/CN=wiretime CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.crt"
fi
sign() { # name cn extensions
  key "$out/$1.key"
  openssl req -new -key "$out/$1.key" -subj "/CN=$2" -out "$out/$1.csr"
  printf '%s\n' "$3" > "$out/$1.ext"
  openssl x509 -req -in "$out/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -sha256 -days "$days" \
    -extfile "$out/$1.ext" -out "$out/$1.crt" 2>/dev/null
  rm -f "$out/$1.csr" "$out/$1.ext"
}
sign collector "$host" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san,DNS:localhost,IP:127.0.0.1"
for sensor in "$@"; do
  case "$sensor" in *[!A-Za-z0-9._-]*|'') echo "$0: sensor id \"$sensor\": use letters, digits, . _ -" >&2; exit 2 ;; esac
  sign "$sensor" "$sensor" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
echo "$out: ca.crt, collector.crt/.key for $host, client certificates for: $*"
