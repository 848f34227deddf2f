-- Rotor's audit store on PostgreSQL. Times are timestamptz (UTC on write);
-- the tables hold no token and no key.

CREATE TABLE issuances (
    serial             text        PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    namespace          text        NOT NULL,
    service_account    text        NOT NULL,
    sans               text[]      NOT NULL,
    key_algorithm      text        NOT NULL,
    key_size           integer     NOT NULL,
    public_key_sha256  text        NOT NULL,
    csr_sha256         text        NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    issued_at          timestamptz NOT NULL,
    issuer_key_id      text        NOT NULL,
    authenticator      text        NOT NULL,
    token_subject      text        NOT NULL,
    remote_addr        text        NOT NULL,
    bundle_fingerprint text        NOT NULL DEFAULT '',
    certificate        bytea       NOT NULL
);

-- "What did this workload get, and when?"
CREATE INDEX issuances_identity_issued_at ON issuances (namespace, service_account, issued_at);
-- "What was issued in this window?"
CREATE INDEX issuances_issued_at ON issuances (issued_at);
-- "What is still valid?" and retention clean-up of expired rows.
CREATE INDEX issuances_not_after ON issuances (not_after);

COMMENT ON TABLE issuances IS 'One row per issued certificate, committed before the certificate leaves the CA.';
COMMENT ON COLUMN issuances.serial IS 'Certificate serial number, lowercase hex without separators.';
COMMENT ON COLUMN issuances.namespace IS 'Workload namespace; with service_account it names the identity.';
COMMENT ON COLUMN issuances.service_account IS 'Workload service account.';
COMMENT ON COLUMN issuances.sans IS 'Subject alternative names in the certificate: DNS names, then URIs (the SPIFFE ID).';
COMMENT ON COLUMN issuances.key_algorithm IS 'Public key algorithm of the leaf: ECDSA, Ed25519 or RSA.';
COMMENT ON COLUMN issuances.key_size IS 'Key size in bits: curve size or RSA modulus.';
COMMENT ON COLUMN issuances.public_key_sha256 IS 'SHA-256 of the leaf''s SubjectPublicKeyInfo, hex.';
COMMENT ON COLUMN issuances.csr_sha256 IS 'SHA-256 of the certificate signing request, hex.';
COMMENT ON COLUMN issuances.not_before IS 'Start of validity (backdated by the allowed clock skew).';
COMMENT ON COLUMN issuances.not_after IS 'End of validity.';
COMMENT ON COLUMN issuances.issued_at IS 'When the CA signed the certificate.';
COMMENT ON COLUMN issuances.issuer_key_id IS 'Subject key ID of the issuing CA certificate, hex.';
COMMENT ON COLUMN issuances.authenticator IS 'Method that accepted the caller: token, jwt, tokenreview, mtls.';
COMMENT ON COLUMN issuances.token_subject IS 'Which credential it was, without revealing it: token hash prefix, JWT subject, certificate serial.';
COMMENT ON COLUMN issuances.remote_addr IS 'Peer address of the request.';
COMMENT ON COLUMN issuances.bundle_fingerprint IS 'Trust bundle fingerprint the client said it held, or empty.';
COMMENT ON COLUMN issuances.certificate IS 'The issued certificate, DER.';

CREATE TABLE refusals (
    id              bigserial   PRIMARY KEY,
    time            timestamptz NOT NULL,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    namespace       text        NOT NULL DEFAULT '',
    service_account text        NOT NULL DEFAULT '',
    authenticator   text        NOT NULL DEFAULT '',
    remote_addr     text        NOT NULL DEFAULT ''
);

CREATE INDEX refusals_time ON refusals (time);

COMMENT ON TABLE refusals IS 'One row per refused certificate request.';
COMMENT ON COLUMN refusals.time IS 'When the request was refused.';
COMMENT ON COLUMN refusals.reason IS 'Stable error code, e.g. unauthenticated, identity-not-allowed, bad-csr, rate-limited.';
COMMENT ON COLUMN refusals.detail IS 'The message the caller was given.';
COMMENT ON COLUMN refusals.namespace IS 'Caller namespace, empty if the caller was not authenticated.';
COMMENT ON COLUMN refusals.service_account IS 'Caller service account, empty if the caller was not authenticated.';
COMMENT ON COLUMN refusals.authenticator IS 'Method that accepted the caller, empty if none did.';
COMMENT ON COLUMN refusals.remote_addr IS 'Peer address of the request.';

CREATE TABLE static_tokens (
    hash            bytea       PRIMARY KEY CHECK (length(hash) = 32),
    namespace       text        NOT NULL,
    service_account text        NOT NULL,
    created_at      timestamptz NOT NULL
);

COMMENT ON TABLE static_tokens IS 'Static bearer tokens, by SHA-256 hash only: the token itself is shown once at creation and never stored.';
COMMENT ON COLUMN static_tokens.hash IS 'SHA-256 of the token.';
COMMENT ON COLUMN static_tokens.namespace IS 'Identity the token authenticates: namespace.';
COMMENT ON COLUMN static_tokens.service_account IS 'Identity the token authenticates: service account.';
COMMENT ON COLUMN static_tokens.created_at IS 'When the token was created.';
