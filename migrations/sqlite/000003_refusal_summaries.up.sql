-- Refusals of one unauthenticated source past its budget, one row per
-- source and interval, so a flood of bad requests grows the audit by a row
-- a minute instead of a row per request (rotor.RefusalBudget).
CREATE TABLE refusal_summaries (
    id         INTEGER PRIMARY KEY,
    source     TEXT    NOT NULL,                   -- remote host, no port
    first_time TEXT    NOT NULL,
    last_time  TEXT    NOT NULL,
    count      INTEGER NOT NULL CHECK (count > 0),
    reasons    TEXT    NOT NULL CHECK (json_valid(reasons)) -- {"unauthenticated": 980, ...}
) STRICT;

CREATE INDEX refusal_summaries_last_time ON refusal_summaries (last_time);

-- Every refusal, one row per reason: single refusals count 1, summaries
-- their count per reason. "Refusals by reason" reads this view.
CREATE VIEW refusal_counts AS
    SELECT time AS first_time, time AS last_time, reason, 1 AS count,
           CASE WHEN instr(remote_addr, ':') > 0 THEN substr(remote_addr, 1, instr(remote_addr, ':') - 1)
                ELSE remote_addr END AS source, namespace, service_account
    FROM refusals
    UNION ALL
    SELECT s.first_time, s.last_time, j.key, j.value, s.source, '', ''
    FROM refusal_summaries s, json_each(s.reasons) j;
