#!/bin/sh
# rotor-ca-init: what docker-compose.yml runs once before rotor-ca starts.
#
#   1. SoftHSM2 stands in for an HSM: initialise a token labelled
#      $ROTOR_PKCS11_TOKEN with a random user PIN, written to
#      $ROTOR_PKCS11_PIN_FILE (0600), and a random SO PIN that is thrown away.
#   2. `rotor-ca init --signer pkcs11` makes the issuing key inside the token
#      (non-extractable), a root CA and the issuing CA certificate, and writes
#      issuer.crt, issuer.conf, root.crt, bundle.pem and root.key into
#      $ROTOR_DATA_DIR.
#   3. The root key moves to $ROOT_KEY_DIR, a volume only this step mounts
#      (keep it to certify a new issuing key later with rotor-ca init
#      --root-cert --root-key); the bundle is copied to $TRUST_DIR, the
#      volume the agents read it from.
#
# With a real HSM, step 1 is the vendor's tooling and the rest is the same.
# It reads rotor-ca init's settings (the ROTOR_* variables) and does nothing
# if the CA is already set up.
set -eu
: "${ROTOR_DATA_DIR:?}" "${ROTOR_PKCS11_TOKEN:?}" "${ROTOR_PKCS11_PIN_FILE:?}" "${SOFTHSM2_CONF:?}"
: "${ROOT_KEY_DIR:?}" "${TRUST_DIR:?}"
log() { echo "rotor-ca-init: $*" >&2; }

if [ -s "$ROTOR_DATA_DIR/issuer.conf" ]; then
	log "the CA is already set up ($ROTOR_DATA_DIR/issuer.conf); nothing to do"
	exit 0
fi
# A token without issuer.conf means an earlier run died half-way; a second
# token with the same label would make the CA's choice ambiguous.
if softhsm2-util --show-slots | grep -q "Label: *$ROTOR_PKCS11_TOKEN *\$"; then
	log "token $ROTOR_PKCS11_TOKEN exists but $ROTOR_DATA_DIR/issuer.conf does not: remove the volumes and run again"
	exit 1
fi

# 1. The token. softhsm2-util takes PINs only as arguments; this container
# runs nothing else that could read them from the process table.
umask 077
pin=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$(dirname "$ROTOR_PKCS11_PIN_FILE")"
printf '%s\n' "$pin" >"$ROTOR_PKCS11_PIN_FILE"
softhsm2-util --init-token --free --label "$ROTOR_PKCS11_TOKEN" \
	--pin "$pin" --so-pin "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >/dev/null
log "initialised SoftHSM2 token $ROTOR_PKCS11_TOKEN; user PIN in $ROTOR_PKCS11_PIN_FILE"

# 2. Root, issuing key in the token, issuing CA certificate.
rotor-ca init --signer pkcs11

# 3. The root key leaves the CA's directory; the agents get the bundle.
mv "$ROTOR_DATA_DIR/root.key" "$ROOT_KEY_DIR/root.key"
umask 022
cp "$ROTOR_DATA_DIR/bundle.pem" "$TRUST_DIR/bundle.pem.tmp"
mv "$TRUST_DIR/bundle.pem.tmp" "$TRUST_DIR/bundle.pem"
log "root key in $ROOT_KEY_DIR/root.key; trust bundle for the agents in $TRUST_DIR/bundle.pem"
