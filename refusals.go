package rotor

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// RefusalSummary is the audit record of the refusals one unauthenticated
// source had past its budget in one interval: how many, why, and when the
// first and last came. With it a flood still says what happened, but grows
// the audit by one row per source and interval.
type RefusalSummary struct {
	Source      string // the remote host, no port
	First, Last time.Time
	Count       int
	Reasons     map[ErrorCode]int
}

// RefusalBudget bounds the refusal rows of one unauthenticated source: Rows
// rows per Interval, then one RefusalSummary for the rest of the interval.
// Refusals of an authenticated caller are always recorded one by one; the
// per-identity rate limit bounds those. Rows zero means no bound.
type RefusalBudget struct {
	Rows     int
	Interval time.Duration
}

// DefaultRefusalBudget allows a burst of 20 rows a minute per source:
// enough to see what a misconfigured workload sends, too few to fill a disk.
var DefaultRefusalBudget = RefusalBudget{Rows: 20, Interval: time.Minute}

// refusalLog records refusals within their budget. Safe for concurrent use.
type refusalLog struct {
	budget RefusalBudget
	audit  AuditLog
	log    *slog.Logger

	mu      sync.Mutex
	sources map[string]*sourceRefusals
	calls   int
}

// sourceRefusals is one source's current interval.
type sourceRefusals struct {
	start   time.Time
	rows    int
	summary *RefusalSummary // nil until the budget is spent
	timer   *time.Timer     // flushes summary at the interval's end
}

// SourceOf is the host part of a remote address, the unit refusals and
// failed authentications are counted by.
func SourceOf(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// record commits r, or counts it in its source's summary once the source
// has spent its budget. It returns the store's error for a row it tried.
func (l *refusalLog) record(ctx context.Context, r *Refusal) error {
	if !r.Identity.IsZero() || l.budget.Rows <= 0 {
		return l.audit.RecordRefusal(ctx, r)
	}
	src := SourceOf(r.RemoteAddr)
	l.mu.Lock()
	st := l.current(src, r.Time)
	if st.rows < l.budget.Rows {
		st.rows++
		l.mu.Unlock()
		return l.audit.RecordRefusal(ctx, r)
	}
	if st.summary == nil {
		st.summary = &RefusalSummary{Source: src, First: r.Time, Reasons: map[ErrorCode]int{}}
		st.timer = time.AfterFunc(st.start.Add(l.budget.Interval).Sub(r.Time), func() { l.flush(src, st) })
	}
	st.summary.Count++
	st.summary.Reasons[r.Reason]++
	st.summary.Last = r.Time
	l.mu.Unlock()
	return nil
}

// current is src's interval at now, a new one if the last has ended. The
// caller holds mu.
func (l *refusalLog) current(src string, now time.Time) *sourceRefusals {
	if l.sources == nil {
		l.sources = map[string]*sourceRefusals{}
	}
	if l.calls++; l.calls%4096 == 0 {
		for k, st := range l.sources {
			if st.summary == nil && now.Sub(st.start) >= l.budget.Interval {
				delete(l.sources, k)
			}
		}
	}
	st := l.sources[src]
	if st == nil || now.Sub(st.start) >= l.budget.Interval {
		// A summary of the ended interval is flushed by its own timer.
		st = &sourceRefusals{start: now}
		l.sources[src] = st
	}
	return st
}

// flush commits st's summary, if it has one, and forgets st.
func (l *refusalLog) flush(src string, st *sourceRefusals) {
	l.mu.Lock()
	sum := st.summary
	st.summary = nil
	if l.sources[src] == st {
		delete(l.sources, src)
	}
	l.mu.Unlock()
	if sum == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.audit.RecordRefusalSummary(ctx, sum); err != nil {
		l.log.Error("could not record a refusal summary", "source", sum.Source, "count", sum.Count, "error", err)
	}
}

// close commits every pending summary now.
func (l *refusalLog) close() {
	l.mu.Lock()
	pending := map[string]*sourceRefusals{}
	for src, st := range l.sources {
		if st.summary != nil && st.timer.Stop() {
			pending[src] = st
		}
	}
	l.mu.Unlock()
	for src, st := range pending {
		l.flush(src, st)
	}
}
