-- Rotor's audit store on SQLite. Same tables and columns as on PostgreSQL.
--
-- Times are UTC text in SQLite's own datetime format, 'YYYY-MM-DD HH:MM:SS'
-- with up to six fractional digits when there are any: they sort as
-- strings and compare directly with datetime('now', '-1 hour') or
-- '2026-11-27'. SANs are a JSON array (query with json_each). golang-migrate
-- wraps this file in a transaction.

-- One row per issued certificate, committed before the certificate leaves
-- the CA.
CREATE TABLE issuances (
    serial             TEXT    NOT NULL PRIMARY KEY, -- lowercase hex, no separators
    namespace          TEXT    NOT NULL,             -- with service_account: the identity
    service_account    TEXT    NOT NULL,
    sans               TEXT    NOT NULL,             -- JSON array: DNS names, then URIs
    key_algorithm      TEXT    NOT NULL,             -- ECDSA, Ed25519, RSA
    key_size           INTEGER NOT NULL,             -- bits: curve size or modulus
    public_key_sha256  TEXT    NOT NULL,             -- hex, of the SubjectPublicKeyInfo
    csr_sha256         TEXT    NOT NULL,             -- hex
    not_before         TEXT    NOT NULL,
    not_after          TEXT    NOT NULL,
    issued_at          TEXT    NOT NULL,
    issuer_key_id      TEXT    NOT NULL,             -- issuer's subject key ID, hex
    authenticator      TEXT    NOT NULL,             -- token, jwt, tokenreview, mtls
    token_subject      TEXT    NOT NULL,             -- which credential, never the credential
    remote_addr        TEXT    NOT NULL,
    bundle_fingerprint TEXT    NOT NULL DEFAULT '',  -- trust bundle the client held, or ''
    certificate        BLOB    NOT NULL,             -- DER
    CHECK (serial NOT GLOB '*[^0-9a-f]*' AND serial <> '')
) STRICT;

-- "What did this workload get, and when?"
CREATE INDEX issuances_identity_issued_at ON issuances (namespace, service_account, issued_at);
-- "What was issued in this window?"
CREATE INDEX issuances_issued_at ON issuances (issued_at);
-- "What is still valid?" and retention clean-up of expired rows.
CREATE INDEX issuances_not_after ON issuances (not_after);

-- One row per refused certificate request.
CREATE TABLE refusals (
    id              INTEGER PRIMARY KEY,
    time            TEXT    NOT NULL,
    reason          TEXT    NOT NULL,             -- stable error code, e.g. bad-csr
    detail          TEXT    NOT NULL,             -- the message the caller was given
    namespace       TEXT    NOT NULL DEFAULT '',  -- '' if the caller was not authenticated
    service_account TEXT    NOT NULL DEFAULT '',
    authenticator   TEXT    NOT NULL DEFAULT '',  -- '' if no authenticator accepted the caller
    remote_addr     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX refusals_time ON refusals (time);

-- Static bearer tokens by SHA-256 hash only: the token is shown once at
-- creation and never stored.
CREATE TABLE static_tokens (
    hash            BLOB NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    namespace       TEXT NOT NULL,
    service_account TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
