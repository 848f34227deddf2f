-- Root rotation cut-over: which roots each trust bundle the CA has served
-- holds, and views that say which live identities already hold a new root.
-- Same tables, columns and views as on PostgreSQL.

-- One row per root of each trust bundle the CA has served, recorded when
-- the CA loads or reloads its bundle.
CREATE TABLE bundle_roots (
    bundle_fingerprint TEXT NOT NULL, -- SHA-256 over the sorted roots, hex: what agents report
    root_fingerprint   TEXT NOT NULL, -- SHA-256 of the root's DER, hex
    root_subject       TEXT NOT NULL,
    root_not_after     TEXT NOT NULL,
    first_served_at    TEXT NOT NULL, -- when a CA first recorded this bundle
    PRIMARY KEY (bundle_fingerprint, root_fingerprint),
    CHECK (length(bundle_fingerprint) = 64 AND bundle_fingerprint NOT GLOB '*[^0-9a-f]*'),
    CHECK (length(root_fingerprint) = 64 AND root_fingerprint NOT GLOB '*[^0-9a-f]*')
) STRICT;

-- "Which bundles hold this root?"
CREATE INDEX bundle_roots_root ON bundle_roots (root_fingerprint);

-- The newest unexpired issuance of each identity: what its workload holds
-- now. Stored times sort as text, so they compare with 'now' formatted the
-- same way.
CREATE VIEW live_identities AS
SELECT namespace, service_account, serial, issued_at, not_after, bundle_fingerprint
FROM (SELECT namespace, service_account, serial, issued_at, not_after, bundle_fingerprint,
             row_number() OVER (PARTITION BY namespace, service_account
                                ORDER BY issued_at DESC, serial DESC) AS newest
      FROM issuances
      WHERE not_after > strftime('%Y-%m-%d %H:%M:%f', 'now'))
WHERE newest = 1;

-- Per live identity and per root the CA has served: does the bundle the
-- identity reported with its newest certificate hold that root (1 or 0)?
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
