#!/bin/sh
# Makes the token signing key pair in /secrets, once: an Ed25519 private key
# (PKCS#8 PEM) for the command API and its public half for the verifiers.
# Existing keys are kept (rotation is a deliberate step: README.md, "Run in
# production"). The private key is readable only by the services' user
# (uid 65532, distroless nonroot); the public key by anyone.
set -eu
private=/secrets/jwt_private_key.pem
public=/secrets/jwt_public_key.pem
if [ -e "$private" ]; then
  echo "keygen: $private exists, kept"
  exit 0
fi
umask 077
openssl genpkey -algorithm ed25519 -out "$private"
openssl pkey -in "$private" -pubout -out "$public"
chown 65532:65532 "$private"
chmod 0400 "$private"
chmod 0444 "$public"
echo "keygen: wrote $private and $public"
