package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/store"
)

// seedOld writes, through the store as the CA would, five certificates
// that expired 100 days ago and an old refusal (places 1 to 6), then one
// certificate still valid (7).
func seedOld(t *testing.T, url string) {
	t.Helper()
	st, err := store.Open(t.Context(), url, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-101 * 24 * time.Hour)
	issue := func(serial string, at time.Time) {
		t.Helper()
		err := st.RecordIssuance(t.Context(), &rotor.Issuance{Serial: serial,
			Identity: rotor.Identity{Namespace: "shop", ServiceAccount: "web"}, SANs: []string{"web.shop.svc"},
			KeyAlgorithm: "ECDSA", KeySize: 256, NotBefore: at, NotAfter: at.Add(24 * time.Hour), IssuedAt: at,
			IssuerKeyID: "0a", Authenticator: "token", TokenSubject: "token:0a1b2c3d4e5f", Certificate: []byte{0x30}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, serial := range []string{"a1", "a2", "a3", "a4", "a5"} {
		issue(serial, old.Add(time.Duration(i)*time.Minute))
	}
	if err := st.RecordRefusal(t.Context(), &rotor.Refusal{Time: old, Reason: rotor.EUnauthenticated,
		Detail: "bad token", RemoteAddr: "192.0.2.1:1"}); err != nil {
		t.Fatal(err)
	}
	issue("b1", now.Add(-time.Hour))
}

// TestPrune: prune --dry-run deletes nothing; prune deletes the expired
// rows in batches, records itself, and leaves a chain that verifies, also
// against a checkpoint kept from before.
func TestPrune(t *testing.T) {
	t.Parallel()
	for _, st := range auditStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := st.args(t, dir)
			url := storeURL(args)
			seedOld(t, url)
			if _, err := checkpoint.NewKey(dir, "rotor-audit-test"); err != nil {
				t.Fatal(err)
			}
			kept, errOut, code := rotorCACmd(t, nil, append([]string{"audit", "checkpoint"}, args...)...)
			if code != 0 {
				t.Fatalf("audit checkpoint: exit %d: %s", code, errOut)
			}
			keptFile := filepath.Join(t.TempDir(), "kept")
			if err := os.WriteFile(keptFile, []byte(kept), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				args []string
				code int
				out  string
				rows int64 // issuances after
			}{
				{[]string{"--older-than", "12h"}, 2, "", 6},
				{[]string{"--older-than", "90d", "--batch", "0"}, 2, "", 6},
				{[]string{"--older-than", "90d", "--dry-run"}, 0,
					"would prune audit chain places 1-6: 5 issuances, 1 refusals, 0 refusal_summaries", 6},
				{[]string{"--older-than", "90d", "--batch", "4"}, 0,
					"pruned audit chain places 1-6 in 2 batches: 5 issuances, 1 refusals", 1},
				{[]string{"--older-than", "90d"}, 0, "nothing to prune: the oldest row kept (after chain place 6)", 1},
			} {
				out, errOut, code := rotorCACmd(t, nil, append(append([]string{"prune"}, c.args...), args...)...)
				if code != c.code || !strings.Contains(out, c.out) {
					t.Fatalf("prune %v: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.out, out, errOut)
				}
				if n := st.count(t, url, `SELECT count(*) FROM issuances`); n != c.rows {
					t.Fatalf("after prune %v: %d issuances, want %d", c.args, n, c.rows)
				}
			}
			if n := st.count(t, url, `SELECT count(*) FROM admin_actions WHERE action = 'audit.prune' AND reason = 'retention'`); n != 1 {
				t.Fatalf("%d audit.prune actions, want 1", n)
			}
			out, errOut, code := rotorCACmd(t, nil, append([]string{"audit", "verify", "--checkpoint", keptFile}, args...)...)
			if code != 0 || !strings.Contains(out, "intact: 2 rows, places 7 to 8") {
				t.Fatalf("audit verify after prune: exit %d: %s%s", code, out, errOut)
			}
		})
	}
}
