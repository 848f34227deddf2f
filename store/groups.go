package store

import "strings"

// issuanceParams is the number of parameters one issuance row takes: its
// issuanceColumns, chain_seq and chain_hash.
const issuanceParams = 20

// issuanceGroups are the row counts of the multi-row INSERTs a batch of
// issuances is cut into, largest first. Both databases pay per statement
// (Postgres starts an executor, SQLite binds and steps one through
// database/sql), and that, not the row, was much of their CPU per
// certificate; a few fixed sizes keep the prepared statements few.
var issuanceGroups = []int{64, 16, 4, 1}

// insertIssuances returns, by row count, the INSERT of that many
// issuances, with placeholder(i) the i-th parameter (from 1).
func insertIssuances(placeholder func(i int) string) map[int]string {
	m := make(map[int]string, len(issuanceGroups))
	for _, n := range issuanceGroups {
		var q strings.Builder
		q.WriteString("INSERT INTO issuances (" + issuanceColumns + ", chain_seq, chain_hash) VALUES ")
		for r := range n {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for c := range issuanceParams {
				if c > 0 {
					q.WriteString(", ")
				}
				q.WriteString(placeholder(r*issuanceParams + c + 1))
			}
			q.WriteByte(')')
		}
		m[n] = q.String()
	}
	return m
}

// inIssuanceGroups cuts args, issuanceParams per row, into issuanceGroups
// and calls insert with each group's row count and arguments, in order.
func inIssuanceGroups(args []any, insert func(rows int, args []any) error) error {
	for _, n := range issuanceGroups {
		for size := n * issuanceParams; len(args) >= size; args = args[size:] {
			if err := insert(n, args[:size]); err != nil {
				return err
			}
		}
	}
	return nil
}
