package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read the audit rows

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// ledger is what the CA told its clients: every certificate it answered
// with 201 and every failure by code. The audit promise is checked against
// it: each 201 has its row. It is safe for concurrent use.
type ledger struct {
	mu       sync.Mutex
	issued   []issuedCert
	failures map[rotor.ErrorCode]int
}

// issuedCert is a certificate a client got, kept small: a soak holds
// tens of thousands.
type issuedCert struct {
	serial string // as the certificate itself says, not as the answer did
	der    []byte
}

// record notes one answer.
func (l *ledger) record(got *client.Issued, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.issued = append(l.issued, issuedCert{hex.EncodeToString(got.Leaf.SerialNumber.Bytes()), got.Leaf.Raw})
		return
	}
	if l.failures == nil {
		l.failures = map[rotor.ErrorCode]int{}
	}
	l.failures[rotor.ErrorCodeOf(err)]++
}

// created is how many 201s clients got.
func (l *ledger) created() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.issued)
}

// failed is how many requests failed with code.
func (l *ledger) failed(code rotor.ErrorCode) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures[code]
}

// unexpected lists the failures with codes other than allowed.
func (l *ledger) unexpected(allowed ...rotor.ErrorCode) map[rotor.ErrorCode]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := maps.Clone(l.failures)
	for _, c := range allowed {
		delete(out, c)
	}
	return out
}

// auditCounts compares the issuances table with a ledger.
type auditCounts struct {
	Requests, Created int // answers clients got, and how many were 201
	Rows              int // issuance rows in the store
	Checked           int // 201s whose serial was looked up
	// Mismatches are 201s without a row, or whose row holds other bytes
	// than the certificate the client got. The promise is zero.
	Mismatches int
	// LostAcks are rows no client got a 201 for: the commit succeeded but
	// its acknowledgement was lost (the client got 503). Safe: the audit
	// holds a certificate nobody received.
	LostAcks int
}

func (a auditCounts) String() string {
	return fmt.Sprintf("requests=%d created=%d rows=%d checked=%d mismatches=%d lost_acks=%d",
		a.Requests, a.Created, a.Rows, a.Checked, a.Mismatches, a.LostAcks)
}

// audit reads every issuance row and checks each 201 against it: one row
// for its serial, holding the very certificate the client received. It
// fails the test on a mismatch or a serial with two rows.
func (l *ledger) audit(t *testing.T, db *sql.DB) auditCounts {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT serial, certificate FROM issuances`)
	if err != nil {
		t.Fatalf("read the issuances: %v", err)
	}
	defer rows.Close()
	stored := map[string][]byte{}
	var a auditCounts
	for rows.Next() {
		var serial string
		var der []byte
		if err := rows.Scan(&serial, &der); err != nil {
			t.Fatal(err)
		}
		if _, dup := stored[serial]; dup {
			t.Errorf("serial %s has more than one row", serial)
		}
		stored[serial] = der
		a.Rows++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.failures {
		a.Requests += n
	}
	a.Created = len(l.issued)
	a.Requests += a.Created
	mismatch := func(format string, args ...any) {
		if a.Mismatches++; a.Mismatches <= 5 { // the count says the rest
			t.Errorf(format, args...)
		}
	}
	for _, got := range l.issued {
		a.Checked++
		der, ok := stored[got.serial]
		switch {
		case !ok:
			mismatch("certificate %s was answered with 201 but has no audit row", got.serial)
		case !bytes.Equal(der, got.der):
			mismatch("the audit row of %s holds another certificate than the client got", got.serial)
		}
		delete(stored, got.serial)
	}
	a.LostAcks = len(stored)
	if a.Mismatches > 0 {
		t.Errorf("%d of %d certificates answered with 201 lack their audit row or differ from it", a.Mismatches, a.Checked)
	}
	return a
}

// openPostgresDB opens a PostgreSQL store's database, to read its audit.
func openPostgresDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fleet is workloads issuing against one CA at once, each with a key and
// a client of its own, as agents are: a first certificate with the bearer
// token, then renewals over mTLS with the certificate it holds, and every
// tenth request by token again, as an agent that lost its files does.
// Every answer goes to its ledger. After a failure a workload waits a
// little before trying again, so an outage is not a busy loop.
type fleet struct {
	ledger
	stopping atomic.Bool
	inFlight atomic.Int64
	wg       sync.WaitGroup
}

const (
	fleetRetryPause = 20 * time.Millisecond // after a failed request
	fleetTokenEvery = 10
)

// startFleet starts n workloads against ca, each waiting pace after a
// certificate (zero: back to back); stop ends them.
func startFleet(t *testing.T, ca *caRun, token string, n int, pace time.Duration) *fleet {
	t.Helper()
	f := &fleet{}
	for range n {
		key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
		if err != nil {
			t.Fatal(err)
		}
		// One client shared by all would pool connections, and dial spare
		// ones that idle in StateNew, which http.Server.Shutdown waits up
		// to 5s for.
		cl := ca.client(t)
		f.wg.Go(func() { f.run(cl, token, key, pace) })
	}
	t.Cleanup(f.stop)
	return f
}

// run is one workload: it holds its key and, once it has one, the
// certificate that renews it.
func (f *fleet) run(cl *client.Client, token string, key crypto.Signer, pace time.Duration) {
	var cert *tls.Certificate
	for n := 0; !f.stopping.Load(); n++ {
		req := client.IssueRequest{ClientCertificate: cert}
		if cert == nil || n%fleetTokenEvery == 0 || time.Until(cert.Leaf.NotAfter) < time.Second {
			req = client.IssueRequest{Token: token}
		}
		f.inFlight.Add(1)
		got, err := issueKey(context.Background(), cl, key, req)
		f.inFlight.Add(-1)
		f.record(got, err)
		if err != nil {
			time.Sleep(fleetRetryPause)
			continue
		}
		cert = keyPair(got, key)
		time.Sleep(pace)
	}
}

// keyPair is an issued certificate with its key, as a TLS client presents
// it: the leaf, then the chain.
func keyPair(got *client.Issued, key crypto.Signer) *tls.Certificate {
	cert := &tls.Certificate{PrivateKey: key, Leaf: got.Leaf}
	for _, c := range append([]*x509.Certificate{got.Leaf}, got.Chain...) {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert
}

// stop lets every workload finish the request it is in, so that each
// request has its answer in the ledger, and waits for them.
func (f *fleet) stop() {
	f.stopping.Store(true)
	f.wg.Wait()
}

// waitCreated waits until the fleet has had n more 201s than it had when
// called.
func (f *fleet) waitCreated(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	want := f.created() + n
	e2etest.WaitFor(t, fmt.Sprintf("%d more certificates", n), limit, func() bool { return f.created() >= want })
}
