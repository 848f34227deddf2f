-- The operator's half of the CA: a lifecycle for static tokens, admin
-- tokens, denied identities, revoked certificates and the log of every
-- admin action.

ALTER TABLE static_tokens ADD COLUMN admin boolean NOT NULL DEFAULT false;
ALTER TABLE static_tokens ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE static_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE static_tokens ADD COLUMN revoked_at timestamptz;
ALTER TABLE static_tokens ADD COLUMN last_used_at timestamptz;
-- `rotor-ca token revoke token:0123456789ab` finds a token by the start of
-- its hash, the subject audit rows name it by.
CREATE INDEX static_tokens_subject ON static_tokens ((substring(hash from 1 for 6)));

COMMENT ON COLUMN static_tokens.admin IS 'An admin token: it authenticates admin actions, never a certificate request.';
COMMENT ON COLUMN static_tokens.name IS 'Who the token is for, as given to token create --name.';
COMMENT ON COLUMN static_tokens.expires_at IS 'When the token stops working, or NULL for never.';
COMMENT ON COLUMN static_tokens.revoked_at IS 'When the token was revoked, or NULL.';
COMMENT ON COLUMN static_tokens.last_used_at IS 'About when the token last authenticated a request (updated at most once a minute).';

ALTER TABLE issuances ADD COLUMN credential text NOT NULL DEFAULT '';
COMMENT ON COLUMN issuances.credential IS 'The first credential this certificate descends from: the token (token:<hash prefix>) or service-account subject of its first issuance, carried through every mTLS renewal, so revoking it stops the renewals too.';

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
UPDATE issuances SET credential = lineage.credential FROM lineage
    WHERE issuances.serial = lineage.serial AND issuances.authenticator = 'mtls';

CREATE TABLE denied_identities (
    namespace       text        NOT NULL,
    service_account text        NOT NULL,
    denied_at       timestamptz NOT NULL,
    actor           text        NOT NULL,
    reason          text        NOT NULL,
    PRIMARY KEY (namespace, service_account)
);

COMMENT ON TABLE denied_identities IS 'Identities the CA refuses, whatever their credentials (the kill switch); allowing one deletes its row.';
COMMENT ON COLUMN denied_identities.namespace IS 'Denied identity: namespace.';
COMMENT ON COLUMN denied_identities.service_account IS 'Denied identity: service account.';
COMMENT ON COLUMN denied_identities.denied_at IS 'When the identity was denied.';
COMMENT ON COLUMN denied_identities.actor IS 'The admin who denied it.';
COMMENT ON COLUMN denied_identities.reason IS 'Why, as the admin gave it.';

CREATE TABLE revoked_certificates (
    serial      text        PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    revoked_at  timestamptz NOT NULL,
    reason      text        NOT NULL,
    reason_code integer     NOT NULL,
    actor       text        NOT NULL,
    comment     text        NOT NULL DEFAULT ''
);

CREATE INDEX revoked_certificates_revoked_at ON revoked_certificates (revoked_at);

COMMENT ON TABLE revoked_certificates IS 'Certificates revoked before their expiry: on the CRL, refused for mTLS renewal.';
COMMENT ON COLUMN revoked_certificates.serial IS 'Serial of the revoked certificate, as in issuances.';
COMMENT ON COLUMN revoked_certificates.revoked_at IS 'When it was revoked.';
COMMENT ON COLUMN revoked_certificates.reason IS 'RFC 5280 reason name, e.g. keyCompromise, superseded.';
COMMENT ON COLUMN revoked_certificates.reason_code IS 'RFC 5280 CRLReason code of reason.';
COMMENT ON COLUMN revoked_certificates.actor IS 'Who revoked it: an admin, or the CA when an identity was denied with its certificates.';
COMMENT ON COLUMN revoked_certificates.comment IS 'Why, in the actor''s words.';

CREATE TABLE admin_action_log (
    id          bigserial   PRIMARY KEY,
    time        timestamptz NOT NULL,
    actor       text        NOT NULL,
    actor_kind  text        NOT NULL,
    remote_addr text        NOT NULL DEFAULT '',
    action      text        NOT NULL,
    target      text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    detail      text        NOT NULL DEFAULT ''
);

CREATE INDEX admin_action_log_time ON admin_action_log (time);

COMMENT ON TABLE admin_action_log IS 'One row per admin action, committed with the action.';
COMMENT ON COLUMN admin_action_log.time IS 'When the action was taken.';
COMMENT ON COLUMN admin_action_log.actor IS 'Who took it: an admin token''s name and subject, an admin certificate''s subject, or cli:<user>.';
COMMENT ON COLUMN admin_action_log.actor_kind IS 'How the actor authenticated: the authenticator (token, admin-mtls), or cli (the rotor-ca command on the store).';
COMMENT ON COLUMN admin_action_log.remote_addr IS 'Peer address of the request, empty for cli.';
COMMENT ON COLUMN admin_action_log.action IS 'What was done: identity.deny, identity.allow, certificate.revoke, token.create, token.revoke.';
COMMENT ON COLUMN admin_action_log.target IS 'What it was done to: namespace/service-account, a serial, a token subject.';
COMMENT ON COLUMN admin_action_log.reason IS 'Why, as the actor gave it.';
COMMENT ON COLUMN admin_action_log.detail IS 'What else the action did, e.g. the certificates a denial revoked.';

CREATE VIEW revocations AS
    SELECT r.serial, i.namespace, i.service_account, r.revoked_at, r.reason, r.reason_code, r.actor, r.comment,
           i.issuer_key_id, i.not_after
    FROM revoked_certificates r LEFT JOIN issuances i ON i.serial = r.serial;

COMMENT ON VIEW revocations IS 'Every revoked certificate with its identity and issuer.';

CREATE VIEW admin_actions AS
    SELECT id, time, actor, actor_kind, remote_addr, action, target, reason, detail FROM admin_action_log;

COMMENT ON VIEW admin_actions IS 'Every admin action: who, when, from where, what, to what, and why.';

-- The tamper-evident chain. Every issuance, refusal, refusal summary,
-- revocation and admin action carries its place in one chain per store
-- (chain_seq, 1, 2, ...) and chain_hash, the SHA-256 over the previous
-- row's hash, its own place and a digest of its content (store/chain.go has
-- the exact encoding). Writers take their turn by locking audit_chain's one
-- row in the transaction that writes their rows, so a group commit of many
-- rows costs one lock. `rotor-ca audit verify` recomputes the chain.
ALTER TABLE issuances ADD COLUMN chain_seq bigint;
ALTER TABLE issuances ADD COLUMN chain_hash bytea;
ALTER TABLE refusals ADD COLUMN chain_seq bigint;
ALTER TABLE refusals ADD COLUMN chain_hash bytea;
ALTER TABLE refusal_summaries ADD COLUMN chain_seq bigint;
ALTER TABLE refusal_summaries ADD COLUMN chain_hash bytea;
ALTER TABLE revoked_certificates ADD COLUMN chain_seq bigint;
ALTER TABLE revoked_certificates ADD COLUMN chain_hash bytea;
ALTER TABLE admin_action_log ADD COLUMN chain_seq bigint;
ALTER TABLE admin_action_log ADD COLUMN chain_hash bytea;
CREATE UNIQUE INDEX issuances_chain_seq ON issuances (chain_seq);
CREATE UNIQUE INDEX refusals_chain_seq ON refusals (chain_seq);
CREATE UNIQUE INDEX refusal_summaries_chain_seq ON refusal_summaries (chain_seq);
CREATE UNIQUE INDEX revoked_certificates_chain_seq ON revoked_certificates (chain_seq);
CREATE UNIQUE INDEX admin_action_log_chain_seq ON admin_action_log (chain_seq);

COMMENT ON COLUMN issuances.chain_seq IS 'This row''s place in the audit chain (1, 2, ...); NULL only for rows written before the chain existed, until the CA seals them in.';
COMMENT ON COLUMN issuances.chain_hash IS 'SHA-256 over the previous place''s hash, this place and this row''s content: see store/chain.go.';
COMMENT ON COLUMN refusals.chain_seq IS 'This row''s place in the audit chain (1, 2, ...); NULL only for rows written before the chain existed, until the CA seals them in.';
COMMENT ON COLUMN refusals.chain_hash IS 'SHA-256 over the previous place''s hash, this place and this row''s content: see store/chain.go.';
COMMENT ON COLUMN refusal_summaries.chain_seq IS 'This row''s place in the audit chain (1, 2, ...); NULL only for rows written before the chain existed, until the CA seals them in.';
COMMENT ON COLUMN refusal_summaries.chain_hash IS 'SHA-256 over the previous place''s hash, this place and this row''s content: see store/chain.go.';
COMMENT ON COLUMN revoked_certificates.chain_seq IS 'This row''s place in the audit chain (1, 2, ...); NULL only for rows written before the chain existed, until the CA seals them in.';
COMMENT ON COLUMN revoked_certificates.chain_hash IS 'SHA-256 over the previous place''s hash, this place and this row''s content: see store/chain.go.';
COMMENT ON COLUMN admin_action_log.chain_seq IS 'This row''s place in the audit chain (1, 2, ...); NULL only for rows written before the chain existed, until the CA seals them in.';
COMMENT ON COLUMN admin_action_log.chain_hash IS 'SHA-256 over the previous place''s hash, this place and this row''s content: see store/chain.go.';

CREATE TABLE audit_chain (
    id       integer     PRIMARY KEY CHECK (id = 1),
    seq      bigint      NOT NULL,
    hash     bytea       NOT NULL,
    sealed   boolean     NOT NULL,
    base_seq  bigint     NOT NULL,
    base_hash bytea      NOT NULL,
    pruned_at timestamptz
);
INSERT INTO audit_chain (id, seq, hash, sealed, base_seq, base_hash)
    VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000', false,
            0, '\x0000000000000000000000000000000000000000000000000000000000000000');

COMMENT ON TABLE audit_chain IS 'The head of the audit chain (the last row''s place and hash) and its base (where verification starts: 0, or the last row prune deleted).';
COMMENT ON COLUMN audit_chain.seq IS 'The head: the place of the last row written.';
COMMENT ON COLUMN audit_chain.hash IS 'The head: the chain hash of the last row written.';
COMMENT ON COLUMN audit_chain.base_seq IS 'Where verification starts: 0, or the place of the last row prune deleted.';
COMMENT ON COLUMN audit_chain.base_hash IS 'The chain hash at base_seq (zeros for 0).';
COMMENT ON COLUMN audit_chain.pruned_at IS 'When prune last moved the base, or NULL.';
COMMENT ON COLUMN audit_chain.sealed IS 'Whether the rows written before the chain existed have been given their places; after that, a row without a place was inserted behind the CA''s back.';

CREATE TABLE audit_checkpoints (
    seq       bigint      PRIMARY KEY,
    hash      bytea       NOT NULL,
    signed_at timestamptz NOT NULL,
    note      text        NOT NULL
);

COMMENT ON COLUMN audit_checkpoints.seq IS 'The chain place the checkpoint signs.';
COMMENT ON COLUMN audit_checkpoints.hash IS 'The chain hash at that place.';
COMMENT ON COLUMN audit_checkpoints.signed_at IS 'When the CA signed it.';
COMMENT ON COLUMN audit_checkpoints.note IS 'The checkpoint as a signed note (golang.org/x/mod/sumdb/note), as served.';
COMMENT ON TABLE audit_checkpoints IS 'Signed checkpoints of the chain head (signed-note format), as served at /v1/audit/checkpoint. An auditor keeps copies elsewhere: a rewritten history no longer matches them.';
