-- ACME (RFC 8555) with External Account Binding: see the PostgreSQL
-- migration. Same tables and columns.

CREATE TABLE acme_eab_keys (
    kid             TEXT NOT NULL PRIMARY KEY,
    hmac_key        BLOB,                     -- NULL once bound or revoked
    namespace       TEXT NOT NULL,
    service_account TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT,
    bound_at        TEXT,
    revoked_at      TEXT,
    account_id      TEXT,
    CHECK (hmac_key IS NULL OR (bound_at IS NULL AND revoked_at IS NULL))
) STRICT;

CREATE TABLE acme_accounts (
    id              TEXT NOT NULL PRIMARY KEY,
    key_thumbprint  TEXT NOT NULL UNIQUE,     -- RFC 7638, base64url
    jwk             TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    service_account TEXT NOT NULL,
    eab_kid         TEXT NOT NULL UNIQUE REFERENCES acme_eab_keys (kid),
    status          TEXT NOT NULL CHECK (status IN ('valid', 'deactivated')),
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE acme_orders (
    id         TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES acme_accounts (id),
    dns_names  TEXT NOT NULL,                 -- JSON array
    status     TEXT NOT NULL CHECK (status IN ('ready', 'processing', 'valid')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    serial     TEXT,
    replaces   TEXT
) STRICT;

CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;
CREATE INDEX acme_orders_serial ON acme_orders (serial);

CREATE TABLE acme_nonces (
    nonce      TEXT NOT NULL PRIMARY KEY,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX acme_nonces_expires_at ON acme_nonces (expires_at);
