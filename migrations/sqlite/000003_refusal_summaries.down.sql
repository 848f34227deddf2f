DROP VIEW refusal_counts;
DROP TABLE refusal_summaries;
