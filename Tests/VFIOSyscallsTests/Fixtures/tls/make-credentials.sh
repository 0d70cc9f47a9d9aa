#!/usr/bin/env bash
# Makes the TLS test credentials in QEMU's x509 layout (one directory per party, each with
# the ca-cert.pem it trusts). TEST KEYS ONLY: committed so the tests need no openssl tool
# and run the same everywhere; never use them for anything else. Rerun to regenerate
# (validity 100 years; EC P-256 keys, as fast to make as to check).
#
#   server/          receiver: ca-cert.pem, server-cert.pem, server-key.pem
#                    (CN receiver.test; SAN DNS:receiver.test, DNS:localhost, IP:127.0.0.1, IP:::1)
#   client/          sender: ca-cert.pem, client-cert.pem, client-key.pem
#                    (CN sender-a; SAN DNS:sender-a.example)
#   client-other/    a second sender of the same CA (CN sender-b; SAN DNS:sender-b.example)
#   rogue-client/    a client certificate from an unrelated CA; trusts the real CA
#   rogue-server/    a server certificate from the unrelated CA; trusts the real CA
#   mismatched/      client-cert.pem of sender-a with the key of sender-b
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
  key "$work/$1-key.pem"
  openssl req -x509 -new -key "$work/$1-key.pem" -subj "$2" -days $days -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/$1-cert.pem"
}

leaf() { # ca name subject san usage
  key "$work/$2-key.pem"
  openssl req -new -key "$work/$2-key.pem" -subj "$3" -out "$work/$2.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$5" "$4" \
    > "$work/$2.ext"
  openssl x509 -req -in "$work/$2.csr" -CA "$work/$1-cert.pem" -CAkey "$work/$1-key.pem" -CAcreateserial \
    -days $days -sha256 -extfile "$work/$2.ext" -out "$work/$2-cert.pem" 2>/dev/null
}

ca ca "/O=vfio-migration tests/CN=Test CA"
ca rogue-ca "/O=somebody else/CN=Unrelated CA"
leaf ca server "/O=vfio-migration tests/CN=receiver.test" "DNS:receiver.test,DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth
leaf ca sender-a "/O=vfio-migration tests/CN=sender-a" "DNS:sender-a.example" clientAuth
leaf ca sender-b "/O=vfio-migration tests/CN=sender-b" "DNS:sender-b.example" clientAuth
leaf rogue-ca rogue-client "/O=somebody else/CN=sender-a" "DNS:sender-a.example" clientAuth
leaf rogue-ca rogue-server "/O=somebody else/CN=receiver.test" "DNS:receiver.test,DNS:localhost,IP:127.0.0.1" serverAuth

place() { # directory role cert key
  mkdir -p "$1"
  cp "$work/ca-cert.pem" "$1/ca-cert.pem"
  cp "$work/$3-cert.pem" "$1/$2-cert.pem"
  cp "$work/$4-key.pem" "$1/$2-key.pem"
}
rm -rf server client client-other rogue-client rogue-server mismatched
place server server server server
place client client sender-a sender-a
place client-other client sender-b sender-b
place rogue-client client rogue-client rogue-client
place rogue-server server rogue-server rogue-server
place mismatched client sender-a sender-b
chmod 644 ./*/*.pem
echo "made $(ls -d ./*/ | wc -l) credential directories in $(pwd)"
