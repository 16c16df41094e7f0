#!/bin/sh
# Makes the TLS test fixtures of tests/it/scatter_gather.rs: a CA and a node certificate it
# signed for localhost and 127.0.0.1, valid for a century so the tests never expire. Test keys
# only: never deploy them. Run from this folder; the files are committed.
set -eu
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
  -subj "/CN=Tianshan test CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=tianshan test node" -keyout node.key -out node.csr
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > node.ext
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 \
  -extfile node.ext -out node.pem
rm -f node.csr node.ext ca.key ca.srl
