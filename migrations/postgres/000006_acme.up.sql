-- ACME (RFC 8555) with External Account Binding: EAB keys made by
-- operators, the accounts they bound, orders, and the nonces every replica
-- sharing this database takes once. Certificates issued over ACME are
-- ordinary issuances rows (authenticator 'acme'); creating and revoking
-- EAB keys and binding accounts are admin_action_log rows, in the chain.

CREATE TABLE acme_eab_keys (
    kid             text        PRIMARY KEY,
    hmac_key        bytea,
    namespace       text        NOT NULL,
    service_account text        NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz,
    bound_at        timestamptz,
    revoked_at      timestamptz,
    account_id      text,
    CHECK (hmac_key IS NULL OR (bound_at IS NULL AND revoked_at IS NULL))
);

COMMENT ON TABLE acme_eab_keys IS 'External Account Binding keys, one identity each, single-use.';
COMMENT ON COLUMN acme_eab_keys.hmac_key IS 'The HMAC key, kept only while the key can still bind an account: NULL once bound or revoked.';
COMMENT ON COLUMN acme_eab_keys.bound_at IS 'When an account bound with it (and its HMAC key was erased), or NULL.';
COMMENT ON COLUMN acme_eab_keys.account_id IS 'The account it bound, or NULL.';
COMMENT ON COLUMN acme_eab_keys.kid IS 'The key ID (eab_...), as eab create printed it and the binding names it.';
COMMENT ON COLUMN acme_eab_keys.namespace IS 'Identity the key binds an account to: namespace.';
COMMENT ON COLUMN acme_eab_keys.service_account IS 'Identity the key binds an account to: service account.';
COMMENT ON COLUMN acme_eab_keys.created_at IS 'When the key was made.';
COMMENT ON COLUMN acme_eab_keys.expires_at IS 'When the key stops binding, or NULL for never.';
COMMENT ON COLUMN acme_eab_keys.revoked_at IS 'When the key was revoked unused (and its HMAC key erased), or NULL.';

CREATE TABLE acme_accounts (
    id              text        PRIMARY KEY,
    key_thumbprint  text        NOT NULL UNIQUE,
    jwk             text        NOT NULL,
    namespace       text        NOT NULL,
    service_account text        NOT NULL,
    eab_kid         text        NOT NULL UNIQUE REFERENCES acme_eab_keys (kid),
    status          text        NOT NULL CHECK (status IN ('valid', 'deactivated')),
    created_at      timestamptz NOT NULL
);

COMMENT ON TABLE acme_accounts IS 'ACME accounts, each bound by its EAB key to one identity.';
COMMENT ON COLUMN acme_accounts.key_thumbprint IS 'RFC 7638 SHA-256 thumbprint of the account key, base64url.';
COMMENT ON COLUMN acme_accounts.jwk IS 'The account''s public key, a JWK.';
COMMENT ON COLUMN acme_accounts.id IS 'Account ID, the last part of its kid URL (/acme/account/<id>).';
COMMENT ON COLUMN acme_accounts.namespace IS 'Bound identity: namespace.';
COMMENT ON COLUMN acme_accounts.service_account IS 'Bound identity: service account.';
COMMENT ON COLUMN acme_accounts.eab_kid IS 'The EAB key that bound it, spent by the binding.';
COMMENT ON COLUMN acme_accounts.status IS 'valid, or deactivated by its holder.';
COMMENT ON COLUMN acme_accounts.created_at IS 'When the account was bound.';

CREATE TABLE acme_orders (
    id         text        PRIMARY KEY,
    account_id text        NOT NULL REFERENCES acme_accounts (id),
    dns_names  text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('ready', 'processing', 'valid')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    serial     text,
    replaces   text
);

CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;
CREATE INDEX acme_orders_serial ON acme_orders (serial);

COMMENT ON TABLE acme_orders IS 'ACME orders; their one authorization is valid from the start, since the account binding proved the identity.';
COMMENT ON COLUMN acme_orders.id IS 'Order ID, the last part of its URL (/acme/order/<id>).';
COMMENT ON COLUMN acme_orders.account_id IS 'The account that placed it.';
COMMENT ON COLUMN acme_orders.status IS 'ready until finalized; processing while one finalize issues its certificate; then valid.';
COMMENT ON COLUMN acme_orders.created_at IS 'When it was placed.';
COMMENT ON COLUMN acme_orders.expires_at IS 'When it can no longer be finalized.';
COMMENT ON COLUMN acme_orders.dns_names IS 'The ordered DNS names, a JSON array.';
COMMENT ON COLUMN acme_orders.serial IS 'The certificate issued for the order (issuances.serial), once valid.';
COMMENT ON COLUMN acme_orders.replaces IS 'Serial of the certificate this order replaces (RFC 9773), at most one order each.';

CREATE TABLE acme_nonces (
    nonce      text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX acme_nonces_expires_at ON acme_nonces (expires_at);

COMMENT ON COLUMN acme_nonces.nonce IS 'The nonce, base64url.';
COMMENT ON COLUMN acme_nonces.expires_at IS 'When it stops being accepted.';
COMMENT ON TABLE acme_nonces IS 'Replay-Nonce values handed out and not yet used: using one deletes it, so each is accepted once by any replica.';
