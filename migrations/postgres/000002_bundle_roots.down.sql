DROP VIEW IF EXISTS identity_bundle_status;
DROP VIEW IF EXISTS live_identities;
DROP TABLE IF EXISTS bundle_roots;
