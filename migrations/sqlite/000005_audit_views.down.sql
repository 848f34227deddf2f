DROP VIEW identities_not_renewing;
DROP VIEW issuance_by_identity;
DROP VIEW certificates_expiring;
DROP VIEW active_certificates;
