#!/bin/sh
# Generates the certificates Temporal is reached with in docker-compose.yml: a CA, the server's
# certificate (for the names temporal, localhost and 127.0.0.1) and one client certificate for
# the workers, the dashboard API and the CLI. The frontend requires a client certificate signed
# by this CA (mutual TLS), so whoever reaches port 7233 without one can do nothing.
#
#   deploy/temporal/generate-certs.sh [certs-dir] [ca-dir]
#
# The CA's key goes to ca-dir (default deploy/temporal/ca), which no container mounts; keep it
# offline. Existing files are never overwritten: delete them to rotate. Replace these with
# certificates from your own PKI where you have one.
set -eu

here=$(dirname "$0")
certs=${1:-$here/certs}
ca=${2:-$here/ca}
days=${CERT_DAYS:-365}

mkdir -p "$certs" "$ca"
if [ -e "$certs/server.pem" ] || [ -e "$ca/ca.key" ]; then
  echo "certificates exist in $certs / $ca: delete them first to generate new ones" >&2
  exit 1
fi

umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days "$days" \
  -subj '/CN=canary-temporal-ca' -keyout "$ca/ca.key" -out "$certs/ca.pem" \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null

leaf() {
  name=$1 subject=$2 usage=$3 san=$4
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "$subject" -keyout "$certs/$name.key" -out "$ca/$name.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s' \
    "$usage" "$san" >"$ca/$name.ext"
  openssl x509 -req -in "$ca/$name.csr" -CA "$certs/ca.pem" -CAkey "$ca/ca.key" -CAserial "$ca/ca.srl" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ca/$name.ext" -out "$certs/$name.pem" 2>/dev/null
  rm -f "$ca/$name.csr" "$ca/$name.ext"
}

# The server's certificate also serves as the client certificate between its own services.
leaf server '/CN=temporal' serverAuth,clientAuth 'subjectAltName=DNS:temporal,DNS:localhost,IP:127.0.0.1'
leaf client '/CN=canary-platform' clientAuth ''

# The Temporal and application images run as their own users: the mounted files must be readable.
chmod 0644 "$certs"/*.pem "$certs"/*.key
echo "wrote $certs/{ca,server,client}.pem and keys; CA key in $ca/ca.key"
