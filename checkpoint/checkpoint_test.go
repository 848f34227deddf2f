package checkpoint_test

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/store"
)

func newKeys(t *testing.T) (dir string, verifier string) {
	t.Helper()
	dir = t.TempDir()
	v, err := checkpoint.NewKey(dir, "rotor-audit-cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	return dir, v
}

func TestSignOpen(t *testing.T) {
	t.Parallel()
	dir, vkey := newKeys(t)
	if _, err := checkpoint.NewKey(dir, "again"); err == nil {
		t.Fatal("NewKey overwrote an existing key")
	}
	s, err := checkpoint.LoadSigner(filepath.Join(dir, checkpoint.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cp := store.Checkpoint{Seq: 42, Hash: bytes.Repeat([]byte{7}, 32)}
	signed, err := checkpoint.Sign(s, cp, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey := newKeys(t)
	fromFile, err := checkpoint.LoadVerifier(filepath.Join(dir, checkpoint.VerifierFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		note     []byte
		verifier string
		ok       bool
	}{
		{"ok/as-signed", signed.Note, vkey, true},
		{"fail/other-key", signed.Note, otherKey, false},
		{"fail/place-changed", bytes.Replace(signed.Note, []byte("\n42\n"), []byte("\n43\n"), 1), vkey, false},
		{"fail/hash-changed", bytes.Replace(signed.Note, []byte("BwcH"), []byte("BwcI"), 1), vkey, false},
		{"fail/not-a-note", []byte("42\n"), vkey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := checkpoint.LoadVerifier(tt.verifier)
			if err != nil {
				t.Fatal(err)
			}
			got, err := checkpoint.Open(tt.note, v)
			if !tt.ok {
				if !errors.Is(err, checkpoint.ErrBadCheckpoint) {
					t.Fatalf("Open = %v, want ErrBadCheckpoint", err)
				}
				return
			}
			if err != nil || got.Seq != 42 || !bytes.Equal(got.Hash, cp.Hash) || !got.Time.Equal(signed.Time) {
				t.Fatalf("Open = %+v, %v; want place 42 and the hash", got, err)
			}
		})
	}
	if fromFile.Name() != "rotor-audit-cluster.local" {
		t.Errorf("verifier from file is %q", fromFile.Name())
	}
}

// TestCheckpointer signs the head of a real store, once per change, and
// the checkpoint verifies the chain.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	dir, vkey := newKeys(t)
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(dir, "rotor.db"),
		store.Options{Migrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := checkpoint.LoadSigner(filepath.Join(dir, checkpoint.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := &checkpoint.Checkpointer{Store: st, Signer: s, Log: slog.New(slog.DiscardHandler)}
	for i := range 3 {
		r := &rotor.Refusal{Time: time.Now(), Reason: rotor.EUnauthenticated, Detail: "x", RemoteAddr: "192.0.2.1:1"}
		if err := st.RecordRefusal(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := c.Checkpoint(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	cp, note, err := st.LatestCheckpoint(t.Context())
	if err != nil || cp.Seq != 2 {
		t.Fatalf("latest checkpoint at %d (%v), want 2", cp.Seq, err)
	}
	v, _ := checkpoint.LoadVerifier(vkey)
	opened, err := checkpoint.Open(note, v)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.VerifyChain(t.Context(), &opened.Checkpoint)
	if err != nil || !res.Intact() {
		t.Fatalf("chain against its checkpoint: %v %s", err, res.Report())
	}
}
