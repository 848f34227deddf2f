package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// issuanceFilter is an IssuanceQuery as SQL: a WHERE clause over
// issuances i and its arguments. Pages run newest first by chain place,
// which only grows, so a cursor (the last place a page showed) stays put
// while rows are added.
type issuanceFilter struct {
	where string
	args  []any
	limit int
}

// newIssuanceFilter builds the filter with placeholder(n) naming the n-th
// argument ($1 or ?).
func newIssuanceFilter(q rotor.IssuanceQuery, placeholder func(n int) string) (*issuanceFilter, error) {
	f := &issuanceFilter{limit: q.Limit}
	if f.limit == 0 {
		f.limit = 100
	}
	if f.limit < 1 || f.limit > rotor.MaxPage {
		return nil, rotor.Errorf(rotor.EInvalid, "limit must be from 1 to %d", rotor.MaxPage)
	}
	conds := []string{"i.chain_seq IS NOT NULL"}
	arg := func(v any) string {
		f.args = append(f.args, v)
		return placeholder(len(f.args))
	}
	if q.ServiceAccount != "" && q.Namespace == "" {
		return nil, rotor.Errorf(rotor.EInvalid, "a service account needs its namespace")
	}
	if q.Namespace != "" {
		conds = append(conds, "i.namespace = "+arg(q.Namespace))
	}
	if q.ServiceAccount != "" {
		conds = append(conds, "i.service_account = "+arg(q.ServiceAccount))
	}
	if q.Active {
		conds = append(conds, "i.not_after > "+arg(timeArg(placeholder, q.Now)),
			"NOT EXISTS (SELECT 1 FROM revoked_certificates r WHERE r.serial = i.serial)")
	}
	if q.After != "" {
		seq, err := parseCursor(q.After)
		if err != nil {
			return nil, err
		}
		conds = append(conds, "i.chain_seq < "+arg(seq))
	}
	f.where = " WHERE " + strings.Join(conds, " AND ")
	return f, nil
}

// timeArg is t as the backend's time columns take it: SQLite's are text.
func timeArg(placeholder func(int) string, t time.Time) any {
	if placeholder(1) == "?" {
		return fmtTime(t)
	}
	return utc(t)
}

// page cuts list (fetched with one row more than the limit) to a page.
func (f *issuanceFilter) page(list []*rotor.Issuance, seqs []int64) *rotor.IssuancePage {
	p := &rotor.IssuancePage{Issuances: list}
	if len(list) > f.limit {
		p.Issuances = list[:f.limit]
		p.Next = formatCursor(seqs[f.limit-1])
	}
	return p
}

const cursorPrefix = "v1."

func formatCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func parseCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	s, ok := strings.CutPrefix(string(b), cursorPrefix)
	seq, perr := strconv.ParseInt(s, 10, 64)
	if err != nil || !ok || perr != nil || seq < 1 {
		return 0, rotor.Errorf(rotor.EInvalid, "cursor %q is not one a page of this list returned", c)
	}
	return seq, nil
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = p + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}
