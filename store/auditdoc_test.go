package store_test

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// auditDoc is the document whose queries the tests run.
const auditDoc = "../docs/audit.md"

// auditQuestion is one "## " section of docs/audit.md and its SQL, by
// dialect: "postgres", "sqlite", or "" for both.
type auditQuestion struct {
	title   string
	queries map[string]string
}

// query is the question's SQL for backend ("postgres" or "sqlite").
func (q auditQuestion) query(backend string) string {
	if s, ok := q.queries[backend]; ok {
		return s
	}
	return q.queries[""]
}

// readAuditQuestions parses the numbered questions of docs/audit.md: each
// "## N. ..." heading and the ```sql blocks under it.
func readAuditQuestions(t testing.TB) []auditQuestion {
	t.Helper()
	doc, err := os.ReadFile(auditDoc)
	if err != nil {
		t.Fatal(err)
	}
	var (
		qs      []auditQuestion
		dialect string
		block   *strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && line == "```":
			if len(qs) > 0 {
				qs[len(qs)-1].queries[dialect] = block.String()
			}
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "## ") && len(line) > 3 && line[3] >= '0' && line[3] <= '9':
			qs = append(qs, auditQuestion{title: line[3:], queries: map[string]string{}})
		case line == "```sql" || line == "```sql postgres" || line == "```sql sqlite":
			dialect = strings.TrimSpace(strings.TrimPrefix(line, "```sql"))
			block = &strings.Builder{}
		}
	}
	return qs
}

// TestAuditDoc runs every question of docs/audit.md against a populated
// database on both stores: each must run and answer something, so the
// document cannot go stale.
func TestAuditDoc(t *testing.T) {
	t.Parallel()
	qs := readAuditQuestions(t)
	if len(qs) < 10 {
		t.Fatalf("%s has %d questions, want at least ten", auditDoc, len(qs))
	}
	for _, q := range qs {
		_, both := q.queries[""]
		_, pg := q.queries["postgres"]
		_, lite := q.queries["sqlite"]
		if both == (pg || lite) || pg != lite {
			t.Errorf("%q: want one ```sql block, or one ```sql postgres and one ```sql sqlite (have %v)",
				q.title, len(q.queries))
		}
	}
	for _, b := range []struct {
		name string
		b    backend
	}{{"postgres", postgres}, {"sqlite", sqlite}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, url := b.b.open(t, store.Options{})
			populateAudit(t, s)
			for _, q := range qs {
				sql := q.query(b.name)
				n, err := b.b.rows(t, url, sql)
				if err != nil {
					t.Errorf("%s: %v\n%s", q.title, err, sql)
				} else if n == 0 {
					t.Errorf("%s: no rows, want the populated database's answer\n%s", q.title, sql)
				}
			}
			// The views' own answers, where the history makes them exact.
			for _, c := range []struct {
				query string
				want  int64
			}{
				// web renewed ten minutes ago; cart is past its renewal
				// point with 30 minutes left; batch expired an hour ago.
				{`SELECT count(*) FROM identities_not_renewing`, 2},
				{`SELECT count(*) FROM identities_not_renewing WHERE service_account IN ('cart', 'batch')`, 2},
				// All three of web's (24h each, the oldest 20h old), cart,
				// search (another issuer); not batch (expired), api
				// (revoked by its denial) or ledger (revoked).
				{`SELECT count(*) FROM active_certificates WHERE service_account <> 'web'`, 2},
				{`SELECT count(*) FROM active_certificates WHERE service_account = 'web'`, 3},
				{`SELECT issued FROM issuance_by_identity WHERE service_account = 'web'`, 3},
			} {
				if got := b.b.count(t, url, c.query); got != c.want {
					t.Errorf("%s: %d, want %d", c.query, got, c.want)
				}
			}
		})
	}
}

// populateAudit writes a small history with an answer to every question
// in docs/audit.md, through the store as the CA writes it: a healthy
// identity renewing over mTLS from a token, one dying, one dead, one denied
// with its certificate revoked, one revoked, one under a second issuer,
// refusals, a refusal summary, a never-used token and a recorded bundle.
func populateAudit(t testing.TB, s *store.Store) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	shop := func(sa string) rotor.Identity { return rotor.Identity{Namespace: "shop", ServiceAccount: sa} }
	payments := func(sa string) rotor.Identity { return rotor.Identity{Namespace: "payments", ServiceAccount: sa} }
	record := func(iss *rotor.Issuance) *rotor.Issuance {
		t.Helper()
		if iss.Credential == "" {
			iss.Credential = iss.TokenSubject
		}
		if err := s.RecordIssuance(ctx, iss); err != nil {
			t.Fatalf("RecordIssuance: %v", err)
		}
		return iss
	}
	root := newRoot(t, "audit root")
	bundle := newBundle(t, root)
	if err := s.RecordBundle(ctx, bundle, now); err != nil {
		t.Fatal(err)
	}
	// shop/web: a token's certificate, renewed twice over mTLS.
	prev := newIssuance(t, shop("web"), now.Add(-20*time.Hour))
	prev.BundleFingerprint = bundle.Fingerprint
	record(prev)
	for _, age := range []time.Duration{4 * time.Hour, 10 * time.Minute} {
		iss := newIssuance(t, shop("web"), now.Add(-age))
		iss.Authenticator, iss.TokenSubject, iss.Credential = "mtls", "serial:"+prev.Serial, prev.Credential
		iss.BundleFingerprint = bundle.Fingerprint
		prev = record(iss)
	}
	record(newIssuance(t, shop("cart"), now.Add(-23*time.Hour-30*time.Minute))) // dying: 30 minutes left
	record(newIssuance(t, shop("batch"), now.Add(-25*time.Hour)))               // dead an hour ago
	other := newIssuance(t, shop("search"), now.Add(-time.Hour))
	other.IssuerKeyID = "0f1e2d3c"
	record(other)
	record(newIssuance(t, payments("api"), now.Add(-time.Hour)))
	leaked := record(newIssuance(t, payments("ledger"), now.Add(-2*time.Hour)))

	action := func(reason string) rotor.AdminAction {
		return rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:auditor", Kind: rotor.ActorCLI},
			Reason: reason}
	}
	a := action("stolen node")
	if _, err := s.DenyIdentity(ctx, rotor.Denial{Identity: payments("api"), Time: a.Time, Actor: a.Actor.Name,
		Reason: a.Reason}, true, a); err != nil {
		t.Fatalf("DenyIdentity: %v", err)
	}
	a = action("key on a pastebin")
	if err := s.RevokeCertificate(ctx, rotor.Revocation{Serial: leaked.Serial, Time: a.Time,
		Reason: rotor.ReasonKeyCompromise, Actor: a.Actor.Name, Comment: a.Reason}, a); err != nil {
		t.Fatalf("RevokeCertificate: %v", err)
	}
	hash := bytes.Repeat([]byte{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71}, 4)
	if err := s.CreateToken(ctx, rotor.StaticToken{Hash: hash, Identity: shop("web"), CreatedAt: now,
		Name: "web-prod"}, action("")); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	for _, r := range []*rotor.Refusal{
		{Time: now.Add(-5 * time.Minute), Reason: rotor.EUnauthenticated, Detail: "bad token", RemoteAddr: "192.0.2.7:5100"},
		{Time: now.Add(-3 * time.Minute), Reason: rotor.EDenied, Detail: "identity payments/api is denied",
			Identity: payments("api"), Authenticator: "token", RemoteAddr: "192.0.2.8:5100"},
	} {
		if err := s.RecordRefusal(ctx, r); err != nil {
			t.Fatalf("RecordRefusal: %v", err)
		}
	}
	sum := &rotor.RefusalSummary{Source: "192.0.2.9", First: now.Add(-30 * time.Minute),
		Last: now.Add(-29 * time.Minute), Count: 40,
		Reasons: map[rotor.ErrorCode]int{rotor.EUnauthenticated: 30, rotor.ERateLimited: 10}}
	if err := s.RecordRefusalSummary(ctx, sum); err != nil {
		t.Fatalf("RecordRefusalSummary: %v", err)
	}
}
