-- Root rotation cut-over: which roots each trust bundle the CA has served
-- holds, and views that say which live identities already hold a new root.

CREATE TABLE bundle_roots (
    bundle_fingerprint text        NOT NULL CHECK (bundle_fingerprint ~ '^[0-9a-f]{64}$'),
    root_fingerprint   text        NOT NULL CHECK (root_fingerprint ~ '^[0-9a-f]{64}$'),
    root_subject       text        NOT NULL,
    root_not_after     timestamptz NOT NULL,
    first_served_at    timestamptz NOT NULL,
    PRIMARY KEY (bundle_fingerprint, root_fingerprint)
);

-- "Which bundles hold this root?"
CREATE INDEX bundle_roots_root ON bundle_roots (root_fingerprint);

COMMENT ON TABLE bundle_roots IS 'One row per root of each trust bundle the CA has served, recorded when the CA loads or reloads its bundle.';
COMMENT ON COLUMN bundle_roots.bundle_fingerprint IS 'SHA-256 over the bundle''s sorted roots, hex: what agents report in Rotor-Bundle-Fingerprint and issuances.bundle_fingerprint records.';
COMMENT ON COLUMN bundle_roots.root_fingerprint IS 'SHA-256 of the root certificate''s DER, hex (openssl x509 -fingerprint -sha256, without colons, lowercase).';
COMMENT ON COLUMN bundle_roots.root_subject IS 'Subject of the root certificate.';
COMMENT ON COLUMN bundle_roots.root_not_after IS 'End of the root certificate''s validity.';
COMMENT ON COLUMN bundle_roots.first_served_at IS 'When a CA first recorded this bundle.';

-- The newest unexpired issuance of each identity: what its workload holds now.
CREATE VIEW live_identities AS
SELECT DISTINCT ON (namespace, service_account)
       namespace, service_account, serial, issued_at, not_after, bundle_fingerprint
FROM issuances
WHERE not_after > now()
ORDER BY namespace, service_account, issued_at DESC, serial DESC;

COMMENT ON VIEW live_identities IS 'Per identity with an unexpired certificate, its newest issuance.';

-- Per live identity and per root the CA has served: does the bundle the
-- identity reported with its newest certificate hold that root?
--   SELECT holds_root, count(*) FROM identity_bundle_status
--   WHERE root_fingerprint = '<hex>' GROUP BY holds_root;
CREATE VIEW identity_bundle_status AS
SELECT l.namespace, l.service_account, r.root_fingerprint, r.root_subject,
       l.serial, l.issued_at, l.bundle_fingerprint,
       EXISTS (SELECT 1 FROM bundle_roots b
               WHERE b.bundle_fingerprint = l.bundle_fingerprint
                 AND b.root_fingerprint = r.root_fingerprint) AS holds_root
FROM live_identities l
CROSS JOIN (SELECT DISTINCT root_fingerprint, root_subject FROM bundle_roots) r;

COMMENT ON VIEW identity_bundle_status IS 'Per live identity and served root: whether the bundle reported with its newest certificate holds the root.';
