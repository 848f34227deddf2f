-- Views for the questions an auditor asks (docs/audit.md has them with the
-- SQL that answers each). The same names and columns on SQLite.

-- Issued, not expired, not revoked.
CREATE VIEW active_certificates AS
    SELECT i.serial, i.namespace, i.service_account, i.issued_at, i.not_before, i.not_after,
           i.issuer_key_id, i.authenticator, i.credential, i.key_algorithm, i.remote_addr
    FROM issuances i
    WHERE i.not_after > now()
      AND NOT EXISTS (SELECT 1 FROM revoked_certificates r WHERE r.serial = i.serial);

COMMENT ON VIEW active_certificates IS 'Every certificate that is issued, not expired and not revoked.';

-- Active certificates, soonest expiry first, with the seconds left.
CREATE VIEW certificates_expiring AS
    SELECT serial, namespace, service_account, not_after,
           floor(extract(epoch FROM not_after - now()))::bigint AS expires_in_seconds
    FROM active_certificates
    ORDER BY not_after, serial;

COMMENT ON VIEW certificates_expiring IS 'Active certificates, soonest expiry first, with expires_in_seconds.';

-- Per identity: how many certificates, the first and the last issuance.
-- Only columns of the (namespace, service_account, issued_at) index, so
-- the aggregate reads the index, not the table (5x faster on SQLite at a
-- million rows).
CREATE VIEW issuance_by_identity AS
    SELECT namespace, service_account, count(*) AS issued, min(issued_at) AS first_issued_at,
           max(issued_at) AS last_issued_at
    FROM issuances
    GROUP BY namespace, service_account;

COMMENT ON VIEW issuance_by_identity IS 'Per identity: certificates issued, first and last issuance.';

-- A dying workload: its newest certificate is past the point where a
-- healthy agent renews (two thirds of its lifetime, rotor.RenewShare) and
-- nothing newer exists (two issued in the same microsecond both count as
-- newest: "newer" stays a range on the identity index, not an OR the
-- planner cannot use). Filter on not_after for "expires within an hour
-- or already has": the index on not_after keeps that a range scan, and
-- the one on (namespace, service_account, issued_at) answers "nothing
-- newer" with one probe per candidate.
CREATE VIEW identities_not_renewing AS
    SELECT i.namespace, i.service_account, i.serial, i.issued_at, i.not_after,
           i.issued_at + (i.not_after - i.issued_at) * 2 / 3 AS renew_after,
           floor(extract(epoch FROM i.not_after - now()))::bigint AS expires_in_seconds,
           EXISTS (SELECT 1 FROM revoked_certificates r WHERE r.serial = i.serial) AS revoked,
           EXISTS (SELECT 1 FROM denied_identities d
                   WHERE d.namespace = i.namespace AND d.service_account = i.service_account) AS denied
    FROM issuances i
    WHERE i.issued_at + (i.not_after - i.issued_at) * 2 / 3 < now()
      AND NOT EXISTS (SELECT 1 FROM issuances n
                      WHERE n.namespace = i.namespace AND n.service_account = i.service_account
                        AND n.issued_at > i.issued_at);

COMMENT ON VIEW identities_not_renewing IS 'Identities whose newest certificate is past its renewal point with nothing newer: dying workloads. Filter on not_after.';

COMMENT ON COLUMN admin_action_log.action IS 'What was done: identity.deny, identity.allow, certificate.revoke, token.create, token.revoke, audit.prune.';
