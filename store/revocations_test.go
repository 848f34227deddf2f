package store_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// testRevocations checks what a CRL is made from: the revocations of one
// issuer key's certificates still valid after a time, and their version.
func testRevocations(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := rotor.Identity{Namespace: "shop", ServiceAccount: "web"}
	issue := func(keyID string, issuedAt time.Time) string {
		iss := newIssuance(t, id, issuedAt) // valid for 24h
		iss.IssuerKeyID = keyID
		if err := s.RecordIssuance(t.Context(), iss); err != nil {
			t.Fatalf("RecordIssuance: %v", err)
		}
		return iss.Serial
	}
	revoke := func(serial string, reason rotor.RevocationReason, at time.Time) rotor.Revocation {
		r := rotor.Revocation{Serial: serial, Time: at, Reason: reason, Actor: "cli:test", Comment: "test"}
		if err := s.RevokeCertificate(t.Context(), r, testAction); err != nil {
			t.Fatalf("RevokeCertificate: %v", err)
		}
		return rotor.Revocation{Serial: serial, Time: at, Reason: reason}
	}
	live := revoke(issue("0a1b", now.Add(-time.Hour)), rotor.ReasonKeyCompromise, now.Add(-30*time.Minute))
	expired := revoke(issue("0a1b", now.Add(-25*time.Hour)), rotor.ReasonSuperseded, now.Add(-2*time.Hour))
	other := revoke(issue("ffee", now.Add(-time.Hour)), rotor.ReasonUnspecified, now.Add(-time.Minute))
	notRevoked := issue("0a1b", now.Add(-time.Hour))
	seqOf := func(serial string) int64 {
		return b.count(t, url, fmt.Sprintf(`SELECT chain_seq FROM revoked_certificates WHERE serial = '%s'`, serial))
	}

	tests := []struct {
		name  string
		keyID string
		since time.Time
		want  []rotor.Revocation
	}{
		{"ok/live-of-this-issuer", "0a1b", now, []rotor.Revocation{live}},
		{"ok/expired-after-since", "0a1b", now.Add(-90 * time.Minute), sortedBySerial(live, expired)},
		{"ok/other-issuer", "ffee", now, []rotor.Revocation{other}},
		{"ok/unknown-issuer", "abcd", now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.Revocations(t.Context(), tt.keyID, tt.since)
			if err != nil {
				t.Fatalf("Revocations: %v", err)
			}
			if list.IssuerKeyID != tt.keyID || !reflect.DeepEqual(list.Entries, tt.want) {
				t.Fatalf("Revocations(%s) = %s %+v, want %+v", tt.keyID, list.IssuerKeyID, list.Entries, tt.want)
			}
			want := rotor.RevocationVersion{Count: len(tt.want)}
			for _, r := range tt.want {
				want.Seq = max(want.Seq, seqOf(r.Serial))
			}
			if list.Version != want {
				t.Fatalf("version %+v, want %+v", list.Version, want)
			}
		})
	}

	t.Run("ok/a-revocation-raises-the-head-and-version", func(t *testing.T) {
		head := func() int64 {
			h, err := s.RevocationHead(t.Context())
			if err != nil {
				t.Fatalf("RevocationHead: %v", err)
			}
			return h
		}
		list := func() *rotor.RevocationList {
			l, err := s.Revocations(t.Context(), "0a1b", now)
			if err != nil {
				t.Fatalf("Revocations: %v", err)
			}
			return l
		}
		before, headBefore := list(), head()
		if headBefore != seqOf(other.Serial) {
			t.Fatalf("head %d, want %d: the place of the newest revocation", headBefore, seqOf(other.Serial))
		}
		added := revoke(notRevoked, rotor.ReasonCessationOfOperation, now)
		after := list()
		if h := head(); h != seqOf(notRevoked) || h <= headBefore {
			t.Fatalf("head %d after a revocation at place %d, %d before", h, seqOf(notRevoked), headBefore)
		}
		want := rotor.RevocationVersion{Count: before.Version.Count + 1, Seq: seqOf(notRevoked)}
		if !reflect.DeepEqual(after.Entries, sortedBySerial(live, added)) || after.Version != want {
			t.Fatalf("Revocations = %+v %+v, want %+v %+v", after.Entries, after.Version, sortedBySerial(live, added), want)
		}
	})

	for _, keyID := range []string{"", "0A1B", "0a1", "xyz", "0a1b'--"} {
		t.Run("fail/key-id-"+keyID, func(t *testing.T) {
			if _, err := s.Revocations(t.Context(), keyID, now); rotor.ErrorCodeOf(err) != rotor.EInvalid {
				t.Fatalf("key ID %q: %v, want code %q", keyID, err, rotor.EInvalid)
			}
		})
	}
}

func sortedBySerial(rs ...rotor.Revocation) []rotor.Revocation {
	return slices.SortedFunc(slices.Values(rs), func(a, b rotor.Revocation) int {
		if a.Serial < b.Serial {
			return -1
		}
		return 1
	})
}
