package agent_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// pollEvery is the renewal-info interval of these tests: a short interval
// wins over the CA's 30s floor, so the agent asks this often.
const pollEvery = 50 * time.Millisecond

// pollingAgent runs an agent that polls renewal info every pollEvery,
// with its logs recorded, for a new CA issuing hour-long certificates;
// edit adjusts its configuration first. It is stopped when the test ends.
func pollingAgent(t *testing.T, edit func(*agent.Config)) (*catest.CA, *agent.Agent, *logRecorder) {
	t.Helper()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	cfg := testConfig(t, ca)
	cfg.RenewalInfoInterval = pollEvery
	logs := recordLogs(t, &cfg)
	edit(&cfg)
	a := newAgent(t, cfg)
	t.Cleanup(start(t, a))
	return ca, a, logs
}

// TestRenewalInfoRevoked: polls of an hour-long certificate whose window
// is still far change nothing; once an admin revokes it, the next poll
// finds the window open, and the agent renews at once by token, never
// presenting the revoked certificate, and runs the hook.
func TestRenewalInfoRevoked(t *testing.T) {
	t.Parallel()
	var hooks string
	ca, a, logs := pollingAgent(t, func(cfg *agent.Config) { hooks = hookLog(t, cfg) })
	polls := func() float64 { return metric(t, a, "rotor_agent_renewal_info_polls_total") }
	eventually(t, "the first certificate and three polls", func() bool { return len(lines(t, hooks)) == 1 && polls() >= 3 })
	if n := len(ca.Issuances()); n != 1 {
		t.Fatalf("%d issuances while the window was closed, want 1", n)
	}
	first := ca.Issuances()[0]
	ca.Revoke(t, first.Serial)
	eventually(t, "a new certificate after the revocation", func() bool { return len(lines(t, hooks)) >= 2 })
	iss := ca.Issuances()
	if len(iss) != 2 || iss[1].Authenticator != "token" {
		t.Fatalf("%d issuances, the second by %q; want one more, by token", len(iss), iss[1].Authenticator)
	}
	if got := lines(t, hooks); got[1] != iss[1].Serial {
		t.Errorf("hook ran for %s, want the new certificate %s", got[1], iss[1].Serial)
	}
	if n := failures(t, a, string(rotor.EUnauthenticated)); n != 0 {
		t.Errorf("%v refused attempts: the revoked certificate was presented", n)
	}
	if ev := logs.events(agent.EventRenewalSuggested); len(ev) != 1 || ev[0].attrs["serial"] != first.Serial {
		t.Errorf("renewal suggested %d times (%+v), want once for %s", len(ev), ev, first.Serial)
	}
}

// TestRenewalInfoOutage: while renewal info cannot be had, the agent
// counts and logs it (INFO once, then DEBUG) and renews on its own
// schedule, which stays as it was; when the CA answers again, so do polls.
func TestRenewalInfoOutage(t *testing.T) {
	t.Parallel()
	ca, a, logs := pollingAgent(t, func(*agent.Config) {})
	renewAt := func() float64 { return metric(t, a, "rotor_agent_certificate_renewal_timestamp_seconds") }
	polls := func() float64 { return metric(t, a, "rotor_agent_renewal_info_polls_total") }
	eventually(t, "the first certificate and a poll", func() bool { return renewAt() > 0 && polls() >= 1 })
	planned := renewAt()
	ca.SetMode(catest.Unavailable)
	pollFailures := func() float64 {
		return metric(t, a, `rotor_agent_renewal_info_failures_total{cause="`+string(rotor.EStoreUnavailable)+`"}`)
	}
	eventually(t, "three failed polls", func() bool { return pollFailures() >= 3 })
	if got := renewAt(); got != planned || len(ca.Issuances()) != 1 || failures(t, a, string(rotor.EStoreUnavailable)) != 0 {
		t.Errorf("renewal planned %v (was %v), %d issuances, %v failed renewals: the failed polls disturbed the schedule",
			got, planned, len(ca.Issuances()), failures(t, a, string(rotor.EStoreUnavailable)))
	}
	ev := logs.events(agent.EventRenewalInfoFailed)
	if len(ev) < 3 || ev[0].level != slog.LevelInfo || ev[1].level != slog.LevelDebug || ev[len(ev)-1].level != slog.LevelDebug {
		t.Errorf("%d failed polls logged, want the first at INFO and the rest at DEBUG: %+v", len(ev), ev)
	}
	ca.SetMode(catest.Up)
	answered := polls()
	eventually(t, "polls answered again", func() bool { return polls() > answered })
}

// TestRevokedFallsBackToToken: with renewal info off, a renewal whose
// certificate the CA refuses (revoked) is retried with the token in the
// same attempt, not after a refusal's five-minute backoff.
func TestRevokedFallsBackToToken(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	cfg := testConfig(t, ca)
	cfg.RenewalInfoInterval = 0
	// Renew 2s after issuance: an hour's certificate, 59m58s before expiry.
	cfg.RenewBefore = agent.RenewBefore{Duration: time.Hour - 2*time.Second}
	hooks := hookLog(t, &cfg)
	a := newAgent(t, cfg)
	t.Cleanup(start(t, a))
	eventually(t, "the first certificate", func() bool { return len(lines(t, hooks)) == 1 })
	ca.Revoke(t, ca.Issuances()[0].Serial)
	eventually(t, "the renewal", func() bool { return len(lines(t, hooks)) >= 2 })
	iss := ca.Issuances()
	if iss[1].Authenticator != "token" || failures(t, a, string(rotor.EUnauthenticated)) != 0 {
		t.Errorf("renewal by %q with %v failed attempts; want by token in the attempt the certificate was refused",
			iss[1].Authenticator, failures(t, a, string(rotor.EUnauthenticated)))
	}
}

// TestBundleChangeRenews: when the CA starts serving a bundle with a
// second root (a root rotation's first step), the next poll finds it and
// the agent renews at once, hours before its own schedule, so bundle.pem
// and Workload API clients get both roots; an unchanged bundle renews
// nothing.
func TestBundleChangeRenews(t *testing.T) {
	t.Parallel()
	var hooks, out string
	ca, a, logs := pollingAgent(t, func(cfg *agent.Config) { hooks, out = hookLog(t, cfg), cfg.OutDir })
	polls := func() float64 { return metric(t, a, "rotor_agent_renewal_info_polls_total") }
	eventually(t, "the first certificate and three polls", func() bool { return len(lines(t, hooks)) == 1 && polls() >= 3 })
	if n := len(ca.Issuances()); n != 1 {
		t.Fatalf("%d issuances while the bundle stayed the same, want 1", n)
	}
	next := testpki.New(t, testpki.Options{Name: "Next"})
	ca.SetTrust(t, ca.Issuer, ca.Root, next.Root)
	eventually(t, "a renewal after the bundle changed", func() bool { return len(lines(t, hooks)) >= 2 })
	files, _, err := client.ReadFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := rotor.ParseCertificates(files.Bundle)
	if err != nil || len(roots) != 2 {
		t.Fatalf("bundle.pem holds %d roots (%v), want both", len(roots), err)
	}
	if ev := logs.events(agent.EventBundleChanged); len(ev) != 1 {
		t.Errorf("bundle change logged %d times, want once: %+v", len(ev), ev)
	}
	if got := ca.Issuances()[1].Authenticator; got != "mtls" {
		t.Errorf("renewed by %q, want mtls: the certificate was still good", got)
	}
}
