-- The operator's half of the CA: a lifecycle for static tokens, admin
-- tokens, denied identities, revoked certificates and the log of every
-- admin action. Same tables and columns as on PostgreSQL.

ALTER TABLE static_tokens ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;   -- 1: admin actions only, never a certificate
ALTER TABLE static_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';      -- who it is for
ALTER TABLE static_tokens ADD COLUMN expires_at TEXT;                    -- NULL: never
ALTER TABLE static_tokens ADD COLUMN revoked_at TEXT;                    -- NULL: not revoked
ALTER TABLE static_tokens ADD COLUMN last_used_at TEXT;                  -- at most a minute old
CREATE INDEX static_tokens_subject ON static_tokens (substr(hash, 1, 6));

-- The first credential a certificate descends from, carried through every
-- mTLS renewal: revoking it stops the renewals too.
ALTER TABLE issuances ADD COLUMN credential TEXT NOT NULL DEFAULT '';

-- Certificates issued before now: a first issuance descends from the token
-- or service account it was issued for, a renewal from what the
-- certificate it renewed descends from.
UPDATE issuances SET credential = token_subject WHERE authenticator <> 'mtls';
WITH RECURSIVE lineage (serial, credential) AS (
    SELECT serial, credential FROM issuances WHERE authenticator <> 'mtls'
    UNION ALL
    SELECT i.serial, l.credential FROM issuances i JOIN lineage l ON i.token_subject = 'serial:' || l.serial
    WHERE i.authenticator = 'mtls'
)
UPDATE issuances SET credential = (SELECT credential FROM lineage WHERE lineage.serial = issuances.serial)
    WHERE authenticator = 'mtls' AND serial IN (SELECT serial FROM lineage);

-- Identities the CA refuses whatever their credentials (the kill switch).
CREATE TABLE denied_identities (
    namespace       TEXT NOT NULL,
    service_account TEXT NOT NULL,
    denied_at       TEXT NOT NULL,
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    PRIMARY KEY (namespace, service_account)
) STRICT;

-- Certificates revoked before their expiry: on the CRL, refused for renewal.
CREATE TABLE revoked_certificates (
    serial      TEXT    NOT NULL PRIMARY KEY CHECK (serial NOT GLOB '*[^0-9a-f]*' AND serial <> ''),
    revoked_at  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,             -- RFC 5280 reason name, e.g. keyCompromise
    reason_code INTEGER NOT NULL,             -- its CRLReason code
    actor       TEXT    NOT NULL,
    comment     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX revoked_certificates_revoked_at ON revoked_certificates (revoked_at);

-- One row per admin action, committed with the action.
CREATE TABLE admin_action_log (
    id          INTEGER PRIMARY KEY,
    time        TEXT NOT NULL,
    actor       TEXT NOT NULL,                -- token name and subject, certificate subject, cli:<user>
    actor_kind  TEXT NOT NULL,                -- token, admin-mtls, cli
    remote_addr TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,                -- identity.deny, certificate.revoke, ...
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX admin_action_log_time ON admin_action_log (time);

CREATE VIEW revocations AS
    SELECT r.serial, i.namespace, i.service_account, r.revoked_at, r.reason, r.reason_code, r.actor, r.comment,
           i.issuer_key_id, i.not_after
    FROM revoked_certificates r LEFT JOIN issuances i ON i.serial = r.serial;

CREATE VIEW admin_actions AS
    SELECT id, time, actor, actor_kind, remote_addr, action, target, reason, detail FROM admin_action_log;

-- The tamper-evident chain: see the PostgreSQL migration and store/chain.go.
ALTER TABLE issuances ADD COLUMN chain_seq INTEGER;
ALTER TABLE issuances ADD COLUMN chain_hash BLOB;
ALTER TABLE refusals ADD COLUMN chain_seq INTEGER;
ALTER TABLE refusals ADD COLUMN chain_hash BLOB;
ALTER TABLE refusal_summaries ADD COLUMN chain_seq INTEGER;
ALTER TABLE refusal_summaries ADD COLUMN chain_hash BLOB;
ALTER TABLE revoked_certificates ADD COLUMN chain_seq INTEGER;
ALTER TABLE revoked_certificates ADD COLUMN chain_hash BLOB;
ALTER TABLE admin_action_log ADD COLUMN chain_seq INTEGER;
ALTER TABLE admin_action_log ADD COLUMN chain_hash BLOB;
CREATE UNIQUE INDEX issuances_chain_seq ON issuances (chain_seq);
CREATE UNIQUE INDEX refusals_chain_seq ON refusals (chain_seq);
CREATE UNIQUE INDEX refusal_summaries_chain_seq ON refusal_summaries (chain_seq);
CREATE UNIQUE INDEX revoked_certificates_chain_seq ON revoked_certificates (chain_seq);
CREATE UNIQUE INDEX admin_action_log_chain_seq ON admin_action_log (chain_seq);

-- The chain's head and base (where verification starts).
CREATE TABLE audit_chain (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       INTEGER NOT NULL,
    hash      BLOB    NOT NULL,
    sealed    INTEGER NOT NULL,
    base_seq  INTEGER NOT NULL,
    base_hash BLOB    NOT NULL,
    pruned_at TEXT
) STRICT;
INSERT INTO audit_chain (id, seq, hash, sealed, base_seq, base_hash)
    VALUES (1, 0, zeroblob(32), 0, 0, zeroblob(32));

-- Signed checkpoints of the chain head, served at /v1/audit/checkpoint.
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    signed_at TEXT NOT NULL,
    note      TEXT NOT NULL
) STRICT;
