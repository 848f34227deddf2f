package store_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// testACME checks ACME's state on one backend: an EAB key binds one
// account, once, and its HMAC key is erased when it does; nonces are taken
// once, also by a second store on the same database; every admin action
// stays in an intact chain.
func testACME(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	ctx := t.Context()
	id := rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	key := func() rotor.EABKey {
		k, err := rotor.NewEABKey(rand.Reader, id, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEABKey(ctx, k, testAction); err != nil {
			t.Fatalf("CreateEABKey: %v", err)
		}
		return k
	}
	k1, k2 := key(), key()
	bind := func(k rotor.EABKey, acctID, thumb string) error {
		acct := rotor.ACMEAccount{ID: acctID, Key: []byte(`{"kty":"OKP"}`), KeyThumbprint: thumb, Identity: id,
			EABKeyID: k.KeyID, Status: rotor.ACMEStatusValid, CreatedAt: now}
		return s.BindACMEAccount(ctx, acct, testAction)
	}
	testEABBinding(t, b, s, url, k1, k2, bind, now)
	t.Run("ok/account", func(t *testing.T) {
		a, err := s.ACMEAccountByKey(ctx, "thumb1")
		if err != nil || a.ID != "acct1" || a.Identity != id || a.EABKeyID != k1.KeyID || !a.CreatedAt.Equal(now) {
			t.Fatalf("ACMEAccountByKey = %+v, %v", a, err)
		}
		a.Status = rotor.ACMEStatusDeactivated
		if err := s.UpdateACMEAccount(ctx, a, testAction); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ACMEAccount(ctx, "acct1"); err != nil || got.Status != rotor.ACMEStatusDeactivated {
			t.Fatalf("ACMEAccount after deactivation = %+v, %v", got, err)
		}
	})
	t.Run("ok/orders", func(t *testing.T) { testACMEOrders(t, s, now) })
	t.Run("ok/nonces-across-stores", func(t *testing.T) { testNonces(t, b, s, url, now) })
	t.Run("ok/nonce-sweep", func(t *testing.T) { testNonceSweep(t, b) })
	if v, err := s.VerifyChain(ctx, nil); err != nil || !v.Intact() {
		t.Fatalf("audit chain after ACME actions: %v %v", v, err)
	}
}

// testEABBinding binds k1 and revokes k2, and checks that neither can
// bind again and that no HMAC key is left.
func testEABBinding(t *testing.T, b backend, s *store.Store, url string, k1, k2 rotor.EABKey,
	bind func(k rotor.EABKey, acctID, thumb string) error, now time.Time) {
	ctx := t.Context()
	if got, err := s.EABKey(ctx, k1.KeyID); err != nil || string(got.HMAC) != string(k1.HMAC) || got.Identity != k1.Identity {
		t.Fatalf("EABKey before binding = %+v, %v; want its HMAC key and identity", got, err)
	}
	if err := bind(k1, "acct1", "thumb1"); err != nil {
		t.Fatalf("BindACMEAccount: %v", err)
	}
	tests := []struct {
		name string
		do   func() error
		code rotor.ErrorCode
	}{
		{"fail/eab-reused", func() error { return bind(k1, "acct2", "thumb2") }, rotor.EUnauthenticated},
		{"fail/account-key-taken", func() error { return bind(k2, "acct3", "thumb1") }, rotor.EConflict},
		{"fail/revoke-bound", func() error { _, err := s.RevokeEABKey(ctx, k1.KeyID, testAction); return err }, rotor.EConflict},
		{"ok/revoke-unbound", func() error { _, err := s.RevokeEABKey(ctx, k2.KeyID, testAction); return err }, ""},
		{"fail/revoke-twice", func() error { _, err := s.RevokeEABKey(ctx, k2.KeyID, testAction); return err }, rotor.EConflict},
		{"fail/bind-revoked", func() error { return bind(k2, "acct4", "thumb4") }, rotor.EUnauthenticated},
		{"fail/unknown-key", func() error { _, err := s.EABKey(ctx, "eab_AAAAAAAAAAAAAAAA"); return err }, rotor.ENotFound},
		{"fail/bad-key-id", func() error {
			return s.CreateEABKey(ctx, rotor.EABKey{KeyID: "x", HMAC: k1.HMAC, Identity: k1.Identity}, testAction)
		}, rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := rotor.ErrorCodeOf(tt.do()); code != tt.code {
				t.Fatalf("got code %q, want %q", code, tt.code)
			}
		})
	}
	t.Run("ok/hmac-erased", func(t *testing.T) {
		for _, kid := range []string{k1.KeyID, k2.KeyID} {
			got, err := s.EABKey(ctx, kid)
			if err != nil || got.HMAC != nil {
				t.Fatalf("EABKey(%s) after binding or revoking: HMAC %x, %v; want none", kid, got.HMAC, err)
			}
		}
		list, err := s.EABKeys(ctx)
		if err != nil || len(list) != 2 || list[0].State(now) == "active" {
			t.Fatalf("EABKeys = %+v, %v", list, err)
		}
		if n := b.count(t, url, `SELECT count(*) FROM acme_eab_keys WHERE hmac_key IS NOT NULL`); n != 0 {
			t.Fatalf("%d HMAC keys left in the table, want 0", n)
		}
	})
}

func testACMEOrders(t *testing.T, s *store.Store, now time.Time) {
	ctx := t.Context()
	o := rotor.ACMEOrder{ID: "order1", AccountID: "acct1", DNSNames: []string{"a.example"}, Status: rotor.ACMEStatusReady,
		CreatedAt: now, Expires: now.Add(time.Hour), Replaces: "0abc"}
	if err := s.CreateACMEOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.ID = "order2"
	if code := rotor.ErrorCodeOf(s.CreateACMEOrder(ctx, o2)); code != rotor.EConflict {
		t.Fatalf("second order replacing one certificate: code %q, want conflict", code)
	}
	if err := s.MoveACMEOrder(ctx, "order1", rotor.ACMEStatusReady, rotor.ACMEStatusProcessing, ""); err != nil {
		t.Fatal(err)
	}
	if code := rotor.ErrorCodeOf(s.MoveACMEOrder(ctx, "order1", rotor.ACMEStatusReady, rotor.ACMEStatusProcessing, "")); code != rotor.EConflict {
		t.Fatalf("a second finalize claiming the order: code %q, want conflict", code)
	}
	if err := s.MoveACMEOrder(ctx, "order1", rotor.ACMEStatusProcessing, rotor.ACMEStatusValid, "0def"); err != nil {
		t.Fatal(err)
	}
	if code := rotor.ErrorCodeOf(s.MoveACMEOrder(ctx, "order1", rotor.ACMEStatusProcessing, rotor.ACMEStatusValid, "0fed")); code != rotor.EConflict {
		t.Fatalf("finishing a valid order again: code %q, want conflict", code)
	}
	got, err := s.ACMEOrder(ctx, "order1")
	if err != nil || got.Status != rotor.ACMEStatusValid || got.Serial != "0def" || got.Replaces != "0abc" ||
		len(got.DNSNames) != 1 || !got.Expires.Equal(o.Expires) {
		t.Fatalf("ACMEOrder = %+v, %v", got, err)
	}
}

func testNonces(t *testing.T, b backend, s *store.Store, url string, now time.Time) {
	ctx := t.Context()
	other, err := store.Open(ctx, url, store.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, n := range []string{"n1", "n2"} {
		if err := s.StoreNonce(ctx, n, now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		st    *store.Store
		nonce string
		at    time.Time
		code  rotor.ErrorCode
	}{
		{"ok/other-replica", other, "n1", now, ""},
		{"fail/reused-here", s, "n1", now, rotor.ENotFound},
		{"fail/expired", s, "n2", now.Add(2 * time.Hour), rotor.ENotFound},
		{"ok/still-fresh", s, "n2", now, ""},
		{"fail/unknown", other, "n3", now, rotor.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := rotor.ErrorCodeOf(tt.st.UseNonce(ctx, tt.nonce, tt.at)); code != tt.code {
				t.Fatalf("UseNonce(%s) code %q, want %q", tt.nonce, code, tt.code)
			}
		})
	}
}

// testNonceSweep: expired nonces are swept by a later StoreNonce once a
// minute has passed since the last sweep, and not by every one.
func testNonceSweep(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Second)
	for _, step := range []struct {
		nonce string
		at    time.Time
		rows  int64 // in acme_nonces after
	}{
		{"old", t0, 1},                        // the first store sweeps (nothing yet), then inserts
		{"next", t0.Add(30 * time.Second), 2}, // "old" expired, but a sweep ran 30s ago
		{"late", t0.Add(90 * time.Second), 1}, // a minute on: both expired ones swept
	} {
		if err := s.StoreNonce(ctx, step.nonce, step.at, step.at.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, url, `SELECT count(*) FROM acme_nonces`); n != step.rows {
			t.Fatalf("after storing %s: %d nonce rows, want %d", step.nonce, n, step.rows)
		}
	}
}
