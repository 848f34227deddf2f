COMMENT ON COLUMN admin_action_log.action IS 'What was done: identity.deny, identity.allow, certificate.revoke, token.create, token.revoke.';
DROP VIEW identities_not_renewing;
DROP VIEW issuance_by_identity;
DROP VIEW certificates_expiring;
DROP VIEW active_certificates;
