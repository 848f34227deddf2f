-- Refusals of one unauthenticated source past its budget, one row per
-- source and interval, so a flood of bad requests grows the audit by a row
-- a minute instead of a row per request (rotor.RefusalBudget).
CREATE TABLE refusal_summaries (
    id         bigserial   PRIMARY KEY,
    source     text        NOT NULL,
    first_time timestamptz NOT NULL,
    last_time  timestamptz NOT NULL,
    count      integer     NOT NULL CHECK (count > 0),
    reasons    jsonb       NOT NULL
);

CREATE INDEX refusal_summaries_last_time ON refusal_summaries (last_time);

COMMENT ON TABLE refusal_summaries IS 'Refusals of one unauthenticated source past its row budget, summed per source and interval.';
COMMENT ON COLUMN refusal_summaries.source IS 'Remote host the requests came from, without port.';
COMMENT ON COLUMN refusal_summaries.first_time IS 'When the first refusal summed here happened.';
COMMENT ON COLUMN refusal_summaries.last_time IS 'When the last refusal summed here happened.';
COMMENT ON COLUMN refusal_summaries.count IS 'How many refusals are summed here.';
COMMENT ON COLUMN refusal_summaries.reasons IS 'Count per error code, e.g. {"unauthenticated": 980, "rate-limited": 20}.';

-- Every refusal, one row per reason: single refusals count 1, summaries
-- their count per reason. "Refusals by reason" reads this view.
CREATE VIEW refusal_counts AS
    SELECT time AS first_time, time AS last_time, reason, 1 AS count,
           split_part(remote_addr, ':', 1) AS source, namespace, service_account
    FROM refusals
    UNION ALL
    SELECT s.first_time, s.last_time, r.key, r.value::integer, s.source, '', ''
    FROM refusal_summaries s, jsonb_each_text(s.reasons) r;

COMMENT ON VIEW refusal_counts IS 'Every refusal by reason: refusals count 1 each, refusal summaries their count per reason.';
