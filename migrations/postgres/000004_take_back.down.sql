DROP TABLE audit_checkpoints;
DROP TABLE audit_chain;
DROP INDEX issuances_chain_seq;
ALTER TABLE issuances DROP COLUMN chain_hash, DROP COLUMN chain_seq;
DROP INDEX refusals_chain_seq;
ALTER TABLE refusals DROP COLUMN chain_hash, DROP COLUMN chain_seq;
DROP INDEX refusal_summaries_chain_seq;
ALTER TABLE refusal_summaries DROP COLUMN chain_hash, DROP COLUMN chain_seq;
DROP VIEW admin_actions;
DROP VIEW revocations;
DROP TABLE admin_action_log;
DROP TABLE revoked_certificates;
DROP TABLE denied_identities;
ALTER TABLE issuances DROP COLUMN credential;
DROP INDEX static_tokens_subject;
ALTER TABLE static_tokens DROP COLUMN last_used_at, DROP COLUMN revoked_at, DROP COLUMN expires_at,
    DROP COLUMN name, DROP COLUMN admin;
