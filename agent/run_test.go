package agent_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestOnceIssuesThenReuses: --once issues when nothing is on disk, reuses a
// good certificate on the next start, and renews (over mTLS) when the
// configured key type changed.
func TestOnceIssuesThenReuses(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	cfg := testConfig(t, ca)
	cfg.Once = true
	hooks := hookLog(t, &cfg)
	a := newAgent(t, cfg)
	checkProbes(t, a, "before any certificate", false)
	if ready(t, a, rotor.Identity{}, "Unknown") != 1 || ready(t, a, rotor.Identity{}, "True") != 0 {
		t.Errorf("ready_status before any attempt is not Unknown")
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("first --once: %v", err)
	}
	first, _ := onDisk(t, cfg.OutDir)
	checkProbes(t, a, "with a certificate", true)
	if ready(t, a, webapp, "True") != 1 || ready(t, a, webapp, "Unknown") != 0 {
		t.Errorf("ready_status with a valid certificate is not True for %s", webapp)
	}
	if got := lines(t, hooks); len(got) != 1 || got[0] != first.Leaf.SerialNumber.Text(16) {
		t.Errorf("hook ran for %v, want once for %x", got, first.Leaf.SerialNumber)
	}

	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatalf("second --once: %v", err)
	}
	if again, _ := onDisk(t, cfg.OutDir); !again.Leaf.Equal(first.Leaf) || len(ca.Issuances()) != 1 {
		t.Errorf("restart issued again (%d issuances) although the certificate is good", len(ca.Issuances()))
	}

	cfg.KeyType = rotor.Ed25519
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatalf("--once with a new key type: %v", err)
	}
	third, _ := onDisk(t, cfg.OutDir)
	if _, ok := third.PrivateKey.(ed25519.PrivateKey); !ok {
		t.Errorf("key on disk is %T, want ed25519", third.PrivateKey)
	}
	iss := ca.Issuances()
	if len(iss) != 2 || iss[0].Authenticator != "token" || iss[1].Authenticator != "mtls" {
		t.Errorf("issuances %d, want a token issuance then an mTLS renewal", len(iss))
	}
	if len(lines(t, hooks)) != 2 {
		t.Errorf("hook ran %d times, want 2", len(lines(t, hooks)))
	}
}

// TestRotates: with two-second certificates the agent renews again and
// again, over mTLS, running the hook once per new certificate.
func TestRotates(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: 2 * time.Second})
	cfg := testConfig(t, ca)
	hooks := hookLog(t, &cfg)
	a := newAgent(t, cfg)
	stop := start(t, a)
	eventually(t, "four certificates", func() bool { return len(lines(t, hooks)) >= 4 })
	stop()
	iss := ca.Issuances()
	got := lines(t, hooks)
	// The stop may cut off a renewal the CA had already committed: one
	// issuance past the last hook is that, any more is a lost certificate.
	if len(iss) != len(got) && len(iss) != len(got)+1 {
		t.Fatalf("hook ran %d times for %d certificates", len(got), len(iss))
	}
	for i, s := range got {
		if s != iss[i].Serial {
			t.Errorf("hook %d saw serial %s, issuance %d is %s", i, s, i, iss[i].Serial)
		}
		if want := map[bool]string{true: "token", false: "mtls"}[i == 0]; iss[i].Authenticator != want {
			t.Errorf("issuance %d authenticated by %s, want %s", i, iss[i].Authenticator, want)
		}
		if iss[i].BundleFingerprint != ca.Bundle.Fingerprint {
			t.Errorf("issuance %d reported bundle %q", i, iss[i].BundleFingerprint)
		}
		if i > 0 && iss[i].PublicKeySHA256 == iss[i-1].PublicKeySHA256 {
			t.Errorf("issuance %d reused the previous key without --reuse-key", i)
		}
	}
	cert, _ := onDisk(t, cfg.OutDir)
	if serial := cert.Leaf.SerialNumber.Text(16); serial != got[len(got)-1] {
		t.Errorf("disk holds %s, last hook saw %s", serial, got[len(got)-1])
	}
	if n := metric(t, a, "rotor_agent_renewals_total"); int(n) != len(got) {
		t.Errorf("renewals_total %v, want %d", n, len(got))
	}
	if exp := metric(t, a, `rotor_agent_certificate_expiration_timestamp_seconds{namespace="default",service_account="webapp"}`); int64(exp) != cert.Leaf.NotAfter.Unix() {
		t.Errorf("expiry metric %v, want %d", exp, cert.Leaf.NotAfter.Unix())
	}
}

// TestOutage: while the CA is down past the certificate's expiry, the files
// on disk stay as they were, failures are counted by cause and the expiry
// is logged at ERROR once, not once per retry; when the CA is back, the
// agent renews with its token, since the certificate expired, and logs the
// recovery once.
func TestOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mode  catest.Mode
		cause string
	}{
		{name: "ok/unreachable", mode: catest.Unreachable, cause: string(rotor.ECAUnreachable)},
		{name: "ok/unavailable", mode: catest.Unavailable, cause: string(rotor.EStoreUnavailable)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := catest.New(t, catest.Options{TTL: 2 * time.Second})
			cfg := testConfig(t, ca)
			logs := recordLogs(t, &cfg)
			a := newAgent(t, cfg)
			stop := start(t, a)
			defer stop()
			eventually(t, "the first certificate", func() bool { return len(ca.Issuances()) == 1 })
			ca.SetMode(tt.mode)
			eventually(t, "the first certificate on disk", func() bool {
				_, err := os.Stat(filepath.Join(cfg.OutDir, client.CertFile))
				return err == nil
			})
			// A renewal already in flight when the outage began may still
			// land (a certificate whose lifetime the second's truncation
			// cut short is renewed at once); once an attempt has failed,
			// none can.
			eventually(t, "a failure in the outage", func() bool { return failures(t, a, tt.cause) >= 1 })
			before, version := onDisk(t, cfg.OutDir)
			eventually(t, "expiry during the outage", func() bool {
				cert, v := onDisk(t, cfg.OutDir) // fails the test on a damaged pair
				if v != version || !cert.Leaf.Equal(before.Leaf) {
					t.Fatalf("files changed during the outage: %s -> %s", version, v)
				}
				return time.Now().After(before.Leaf.NotAfter) && failures(t, a, tt.cause) >= 2
			})
			checkExpiryLogged(t, logs, before.Leaf.NotAfter)
			checkProbes(t, a, "with an expired certificate", false)
			if ready(t, a, webapp, "False") != 1 || ready(t, a, webapp, "True") != 0 {
				t.Errorf("ready_status with an expired certificate is not False")
			}
			ca.SetMode(catest.Up)
			eventually(t, "a renewal after the outage", func() bool { return len(ca.Issuances()) >= 2 })
			if got := ca.Issuances()[1].Authenticator; got != "token" {
				t.Errorf("renewal after expiry authenticated by %s, want token", got)
			}
			eventually(t, "the new certificate on disk", func() bool {
				cert, _ := onDisk(t, cfg.OutDir)
				return !cert.Leaf.Equal(before.Leaf)
			})
			checkProbes(t, a, "after recovery", true)
			checkRecoveryLogged(t, logs)
		})
	}
}

// checkExpiryLogged waits for two failed attempts after EventExpired and
// checks it was logged once, at ERROR, after notAfter.
func checkExpiryLogged(t *testing.T, logs *logRecorder, notAfter time.Time) {
	t.Helper()
	eventually(t, "two failures after the expiry was logged", func() bool {
		expired := logs.events(agent.EventExpired)
		return len(expired) > 0 && len(after(logs.events(agent.EventFailed), expired[0].time)) >= 2
	})
	if expired := logs.events(agent.EventExpired); len(expired) != 1 || expired[0].level != slog.LevelError ||
		expired[0].time.Before(notAfter) {
		t.Errorf("expiry logged %d times (%+v), want once at ERROR after %v", len(expired), expired, notAfter)
	}
}

// checkRecoveryLogged waits for EventRecovered and checks it was logged
// once, at INFO, for the first certificate written after the expiry, and
// the expiry still once. Counted at the recovery: two-second certificates
// renewed under load may lapse again later, which is another lapse.
func checkRecoveryLogged(t *testing.T, logs *logRecorder) {
	t.Helper()
	eventually(t, "the recovery logged", func() bool { return len(logs.events(agent.EventRecovered)) > 0 })
	recovered, expired := logs.events(agent.EventRecovered), logs.events(agent.EventExpired)
	written := after(logs.events(agent.EventWritten), expired[0].time)
	if len(recovered) != 1 || recovered[0].level != slog.LevelInfo || recovered[0].attrs["serial"] != written[0].attrs["serial"] {
		t.Errorf("recovery logged as %+v, want once at INFO for %v", recovered, written[0].attrs["serial"])
	}
	if len(expired) != 1 {
		t.Errorf("expiry logged %d times, want once", len(expired))
	}
}

// TestOnceFails: --once gives up at once on a refusal, and on an outage
// or a missing token file at --once-timeout, returning the coded error.
func TestOnceFails(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	tests := []struct {
		name      string
		mut       func(*agent.Config)
		wantCode  rotor.ErrorCode
		wantCause string
		retried   bool // until the timeout
	}{
		{name: "fail/unknown-token", mut: func(c *agent.Config) { c.Token = rotor.TokenPrefix + "unknown" },
			wantCode: rotor.EUnauthenticated, wantCause: string(rotor.EUnauthenticated)},
		{name: "fail/ttl-over-max", mut: func(c *agent.Config) { c.TTL = 48 * time.Hour },
			wantCode: rotor.EInvalid, wantCause: string(rotor.EInvalid)},
		{name: "fail/unreachable", mut: func(c *agent.Config) { c.CAURL = "https://127.0.0.1:1" },
			wantCode: rotor.ECAUnreachable, wantCause: string(rotor.ECAUnreachable), retried: true},
		{name: "fail/wrong-fingerprint", mut: func(c *agent.Config) {
			c.CABundleFile, c.CAFingerprint = "", rotor.Fingerprint(catest.New(t, catest.Options{}).Root.Raw)
		}, wantCode: rotor.ECAUntrusted, wantCause: string(rotor.ECAUntrusted)},
		{name: "fail/missing-token-file", mut: func(c *agent.Config) {
			c.Token, c.TokenFile = "", filepath.Join(t.TempDir(), "absent")
		}, wantCode: rotor.EInternal, wantCause: "token", retried: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, ca)
			// Refusals get all the time in the world, and must not use it.
			cfg.Once, cfg.OnceTimeout, cfg.Rand = true, time.Minute, func() float64 { return 0.01 }
			if tt.retried {
				cfg.OnceTimeout = 500 * time.Millisecond
			}
			tt.mut(&cfg)
			a := newAgent(t, cfg)
			began := time.Now()
			err := a.Run(context.Background())
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Errorf("Run = %v (code %q), want code %q", err, code, tt.wantCode)
			}
			n, took := failures(t, a, tt.wantCause), time.Since(began)
			if tt.retried && (n < 2 || took < cfg.OnceTimeout) {
				t.Errorf("gave up after %v failures in %v, want retries until %v", n, took, cfg.OnceTimeout)
			}
			if !tt.retried && (n != 1 || took > cfg.OnceTimeout/2) {
				t.Errorf("%v failures with cause %s in %v, want one and no retry", n, tt.wantCause, took)
			}
			if ready(t, a, rotor.Identity{}, "False") != 1 {
				t.Errorf("ready_status after a failed first attempt is not False")
			}
			if _, _, rerr := client.ReadFiles(cfg.OutDir); rerr == nil {
				t.Error("a failed --once left files behind")
			}
		})
	}
}

// TestFingerprintMode: first contact pinned to the root; the bundle is kept
// on disk and trusted on the next start without asking again.
func TestFingerprintMode(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	cfg := testConfig(t, ca)
	cfg.CABundleFile, cfg.CAFingerprint, cfg.Once = "", rotor.Fingerprint(ca.Root.Raw), true
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, _, err := client.ReadFiles(cfg.OutDir)
	if err != nil || string(f.Bundle) != string(ca.Bundle.PEM) {
		t.Fatalf("bundle.pem is not the CA's bundle (%v)", err)
	}
	// A new key type forces a renewal, which must trust the kept bundle.
	cfg.KeyType = rotor.ECDSAP384
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatalf("renewal with the kept bundle: %v", err)
	}
	if n := len(ca.Issuances()); n != 2 {
		t.Errorf("%d issuances, want 2", n)
	}
}

// TestOnceKeepsValidCertificate: --once with a certificate that is due but
// still valid exits 0 when the CA cannot be reached: the promise is a valid
// certificate on disk, and there is one.
func TestOnceKeepsValidCertificate(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	cfg := testConfig(t, ca)
	cfg.Once, cfg.Rand = true, func() float64 { return 0 }
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, version := onDisk(t, cfg.OutDir)
	ca.SetMode(catest.Unreachable)
	cfg.KeyType = rotor.ECDSAP384 // due at once
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Errorf("--once with a valid certificate and the CA away = %v, want nil", err)
	}
	if after, v := onDisk(t, cfg.OutDir); v != version || !after.Leaf.Equal(before.Leaf) {
		t.Error("the certificate on disk changed although no renewal succeeded")
	}
}

// TestDiskFromOtherCA: files another CA's agent left in --out-dir are not
// reused, nor is that CA's bundle trusted.
func TestDiskFromOtherCA(t *testing.T) {
	t.Parallel()
	old, ca := catest.New(t, catest.Options{}), catest.New(t, catest.Options{})
	oldCfg := testConfig(t, old)
	oldCfg.Once = true
	if err := newAgent(t, oldCfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, ca)
	cfg.Once, cfg.OutDir = true, oldCfg.OutDir
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(ca.Issuances()); n != 1 {
		t.Errorf("the new CA issued %d certificates, want 1", n)
	}
	if got := ca.Issuances(); len(got) == 1 && got[0].Authenticator != "token" {
		t.Errorf("the new CA was asked with %s, want the token", got[0].Authenticator)
	}
}

// TestReuseKey: with --reuse-key every renewal certifies the same key.
func TestReuseKey(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: 2 * time.Second})
	cfg := testConfig(t, ca)
	cfg.ReuseKey = true
	stop := start(t, newAgent(t, cfg))
	eventually(t, "three certificates", func() bool { return len(ca.Issuances()) >= 3 })
	stop()
	iss := ca.Issuances()
	for i := range iss[1:] {
		if iss[i+1].PublicKeySHA256 != iss[0].PublicKeySHA256 {
			t.Errorf("issuance %d has a new key despite --reuse-key", i+1)
		}
	}
}
