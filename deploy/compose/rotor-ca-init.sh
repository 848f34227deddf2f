#!/bin/sh
# rotor-ca-init: the development stand-in for `rotor-ca init` (not written
# yet) that docker-compose.yml runs once before rotor-ca starts. It
#
#   1. initialises a SoftHSM2 token labelled $ROTOR_PKCS11_TOKEN with a random
#      user PIN, written to $ROTOR_PKCS11_PIN_FILE (0600), and a random SO PIN
#      that is thrown away;
#   2. makes a root CA and an issuing CA with openssl, writes their
#      certificates to $ROTOR_TRUST_BUNDLE and $ROTOR_ISSUER_CERT;
#   3. imports the issuing key into the token as $ROTOR_PKCS11_KEY_LABEL and
#      deletes both private keys from disk.
#
# The issuing key is made in software and then imported, because nothing in
# Rotor yet creates the key inside the token and certifies it; `rotor-ca
# init` will (signer.Generate already can), and then replaces steps 2-3 so
# the key is never outside the HSM. The root key is discarded: to change the
# issuer, remove the compose volumes and start again.
#
# It reads the CA's own settings (the same ROTOR_* variables as rotor-ca
# serve) and SOFTHSM2_CONF, and does nothing if the issuer is already set up.
set -eu
: "${SOFTHSM2_CONF:?}" "${ROTOR_PKCS11_TOKEN:?}" "${ROTOR_PKCS11_KEY_LABEL:?}"
: "${ROTOR_PKCS11_PIN_FILE:?}" "${ROTOR_ISSUER_CERT:?}" "${ROTOR_TRUST_BUNDLE:?}"
td="${ROTOR_TRUST_DOMAIN:-cluster.local}"
log() { echo "rotor-ca-init: $*" >&2; }

if [ -s "$ROTOR_ISSUER_CERT" ] && [ -s "$ROTOR_TRUST_BUNDLE" ] && [ -s "$ROTOR_PKCS11_PIN_FILE" ]; then
	log "issuer already set up ($ROTOR_ISSUER_CERT); nothing to do"
	exit 0
fi
# A token without certificates means an earlier run died half-way; a second
# token with the same label would make the CA's choice ambiguous.
if softhsm2-util --show-slots | grep -q "Label: *$ROTOR_PKCS11_TOKEN *\$"; then
	log "token $ROTOR_PKCS11_TOKEN exists but the issuer certificates do not: remove the volumes and run again"
	exit 1
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/ext.cnf" <<EXT
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[issuer]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT

# 1. The token. softhsm2-util takes PINs only as arguments; this container
# runs nothing else that could read them from the process table.
pin=$(openssl rand -hex 16)
mkdir -p "$(dirname "$ROTOR_PKCS11_PIN_FILE")"
printf '%s\n' "$pin" >"$ROTOR_PKCS11_PIN_FILE"
softhsm2-util --init-token --free --label "$ROTOR_PKCS11_TOKEN" \
	--pin "$pin" --so-pin "$(openssl rand -hex 16)" >/dev/null
log "initialised SoftHSM2 token $ROTOR_PKCS11_TOKEN; user PIN in $ROTOR_PKCS11_PIN_FILE"

# 2. Root and issuing CA, P-256 keys.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/root.key"
openssl req -new -key "$work/root.key" -subj "/O=Rotor/CN=Rotor compose root CA ($td)" -out "$work/root.csr"
openssl x509 -req -in "$work/root.csr" -signkey "$work/root.key" -days 3650 -sha256 \
	-extfile "$work/ext.cnf" -extensions root -out "$work/root.crt" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/issuer.key"
openssl req -new -key "$work/issuer.key" -subj "/O=Rotor/CN=Rotor compose issuing CA ($td)" -out "$work/issuer.csr"
openssl x509 -req -in "$work/issuer.csr" -CA "$work/root.crt" -CAkey "$work/root.key" -days 365 -sha256 \
	-extfile "$work/ext.cnf" -extensions issuer -out "$work/issuer.crt" 2>/dev/null
openssl verify -CAfile "$work/root.crt" "$work/issuer.crt" >/dev/null

# 3. The issuing key goes into the token; no private key stays on disk.
softhsm2-util --import "$work/issuer.key" --token "$ROTOR_PKCS11_TOKEN" \
	--label "$ROTOR_PKCS11_KEY_LABEL" --id 01 --pin "$pin" >/dev/null
rm -f "$work/issuer.key" "$work/root.key"

umask 022
mkdir -p "$(dirname "$ROTOR_ISSUER_CERT")" "$(dirname "$ROTOR_TRUST_BUNDLE")"
install -m 0644 "$work/issuer.crt" "$ROTOR_ISSUER_CERT"
install -m 0644 "$work/root.crt" "$ROTOR_TRUST_BUNDLE"
log "issuing CA in $ROTOR_ISSUER_CERT (key $ROTOR_PKCS11_KEY_LABEL on the token), root in $ROTOR_TRUST_BUNDLE"
