package rotor

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"testing"
	"time"
)

func TestCRLWindow(t *testing.T) {
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		now      time.Time
		validity time.Duration
		start    time.Time
	}{
		{"ok/hour-first-half", day.Add(10*time.Minute + 7*time.Second), time.Hour, day},
		{"ok/hour-second-half", day.Add(59*time.Minute + 59*time.Second), time.Hour, day.Add(30 * time.Minute)},
		{"ok/hour-on-the-step", day.Add(30 * time.Minute), time.Hour, day.Add(30 * time.Minute)},
		{"ok/local-time", day.Add(45 * time.Minute).In(time.FixedZone("CET", 3600)), time.Hour, day.Add(30 * time.Minute)},
		{"ok/shortest", day.Add(1500 * time.Millisecond), MinCRLValidity, day.Add(time.Second)},
		{"ok/fraction-cut", day.Add(4 * time.Second), 5*time.Second + 300*time.Millisecond, day.Add(4 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewCRLWindow(tt.now, tt.validity)
			validity := tt.validity.Truncate(time.Second)
			step := (validity / 2).Truncate(time.Second)
			want := CRLWindow{Start: tt.start, Refresh: tt.start.Add(step), NextUpdate: tt.start.Add(validity),
				Since: tt.start.Add(-step)}
			if w != want {
				t.Fatalf("NewCRLWindow(%v, %v) = %+v, want %+v", tt.now, tt.validity, w, want)
			}
			if tt.now.Before(w.Start) || !tt.now.Before(w.Refresh) {
				t.Fatalf("window %v-%v does not hold %v", w.Start, w.Refresh, tt.now)
			}
		})
	}
}

func TestCRLNumber(t *testing.T) {
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	w1, w2 := NewCRLWindow(day, time.Hour), NewCRLWindow(day.Add(30*time.Minute), time.Hour)
	tests := []struct {
		name          string
		lower, higher *big.Int
	}{
		{"ok/a-revocation-in-the-window", CRLNumber(w1, RevocationVersion{1, 100}), CRLNumber(w1, RevocationVersion{2, 101})},
		{"ok/next-window-with-fewer-entries", CRLNumber(w1, RevocationVersion{2, 1 << 62}), CRLNumber(w2, RevocationVersion{1, 5})},
		{"ok/next-window-with-none", CRLNumber(w1, RevocationVersion{}), CRLNumber(w2, RevocationVersion{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lower.Cmp(tt.higher) >= 0 {
				t.Fatalf("CRL number %v is not below %v", tt.lower, tt.higher)
			}
		})
	}
	// Another replica, later in the same window, with the same list.
	if a, b := CRLNumber(w1, RevocationVersion{3, 7}), CRLNumber(NewCRLWindow(day.Add(29*time.Minute), time.Hour),
		RevocationVersion{3, 7}); a.Cmp(b) != 0 {
		t.Fatalf("same list, same window: numbers %v and %v", a, b)
	}
	far := CRLNumber(NewCRLWindow(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), time.Hour), RevocationVersion{1, 1<<63 - 1})
	if n := len(far.Bytes()); n > 20 {
		t.Fatalf("CRL number of year 9999 has %d octets, RFC 5280 allows 20", n)
	}
}

var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}

// TestSignCRL holds a CRL to what it was made from, for every issuer key
// type: it verifies against the issuer, names it, and lists each serial
// with its time and reason.
func TestSignCRL(t *testing.T) {
	now := time.Now().UTC()
	w := NewCRLWindow(now, time.Hour)
	revokedAt := w.Start.Add(time.Second + 700*time.Millisecond) // after the window's start
	entries := []Revocation{
		{Serial: "40aa" + fmt.Sprintf("%036x", 1), Time: w.Start.Add(-time.Hour), Reason: ReasonKeyCompromise},
		{Serial: "40bb" + fmt.Sprintf("%036x", 2), Time: revokedAt, Reason: ReasonUnspecified},
		{Serial: "7f", Time: w.Start.Add(-time.Minute), Reason: ReasonAACompromise},
	}
	for _, kind := range []KeyType{ECDSAP256, ECDSAP384, RSA2048, Ed25519} {
		iss := testIssuer(t, kind)
		tests := []struct {
			name    string
			entries []Revocation
			seq     int64
		}{
			{"ok/" + string(kind) + "/empty", nil, 0},
			{"ok/" + string(kind) + "/entries", entries, 41},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				list := &RevocationList{IssuerKeyID: iss.KeyID}
				for i, r := range tt.entries {
					list.Add(r, tt.seq-int64(i))
				}
				crl, err := iss.SignCRL(context.Background(), list, w)
				if err != nil {
					t.Fatal(err)
				}
				got, err := x509.ParseRevocationList(crl.DER)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if err := got.CheckSignatureFrom(iss.Certificate); err != nil {
					t.Fatalf("CRL does not verify against its issuer: %v", err)
				}
				wantThis := w.Start
				if len(tt.entries) > 0 {
					wantThis = revokedAt.Truncate(time.Second)
				}
				wantNumber := CRLNumber(w, RevocationVersion{Count: len(tt.entries), Seq: tt.seq})
				switch {
				case got.Number.Cmp(wantNumber) != 0 || crl.Number.Cmp(wantNumber) != 0:
					t.Errorf("number %v (said %v), want %v", got.Number, crl.Number, wantNumber)
				case !got.ThisUpdate.Equal(wantThis) || !crl.ThisUpdate.Equal(wantThis):
					t.Errorf("thisUpdate %v (said %v), want %v", got.ThisUpdate, crl.ThisUpdate, wantThis)
				case !got.NextUpdate.Equal(w.NextUpdate) || !crl.NextUpdate.Equal(w.NextUpdate):
					t.Errorf("nextUpdate %v, want %v", got.NextUpdate, w.NextUpdate)
				case string(got.AuthorityKeyId) != string(iss.Certificate.SubjectKeyId):
					t.Errorf("authorityKeyIdentifier %x, want the issuer's %x", got.AuthorityKeyId, iss.Certificate.SubjectKeyId)
				case string(got.RawIssuer) != string(iss.Certificate.RawSubject):
					t.Errorf("issuer %s, want %s", got.Issuer, iss.Certificate.Subject)
				case len(got.RevokedCertificateEntries) != len(tt.entries):
					t.Fatalf("%d entries, want %d", len(got.RevokedCertificateEntries), len(tt.entries))
				}
				for i, e := range got.RevokedCertificateEntries {
					want := tt.entries[i]
					hasReason := false
					for _, ext := range e.Extensions {
						hasReason = hasReason || ext.Id.Equal(oidReasonCode)
					}
					if e.SerialNumber.Text(16) != want.Serial || !e.RevocationTime.Equal(want.Time.Truncate(time.Second)) ||
						e.ReasonCode != int(want.Reason) || hasReason != (want.Reason != ReasonUnspecified) {
						t.Errorf("entry %d: serial %x at %v, reason %d (extension %v); want %s at %v, %s",
							i, e.SerialNumber, e.RevocationTime, e.ReasonCode, hasReason, want.Serial, want.Time, want.Reason)
					}
				}
			})
		}
	}
}

func TestSignCRLRefuses(t *testing.T) {
	iss := testIssuer(t, ECDSAP256)
	w := NewCRLWindow(time.Now(), time.Hour)
	noCRLSign := *iss
	noCRLSign.Certificate = certWithout(t, iss, x509.KeyUsageCRLSign)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		iss  *Issuer
		list *RevocationList
		code ErrorCode
	}{
		{"fail/signer-unavailable", cancelled, iss, &RevocationList{IssuerKeyID: iss.KeyID}, ESignerUnavailable},
		{"fail/issuer-without-crlsign", context.Background(), &noCRLSign, &RevocationList{IssuerKeyID: iss.KeyID}, EInternal},
		{"fail/other-issuers-list", context.Background(), iss, &RevocationList{IssuerKeyID: "0a1b"}, EInternal},
		{"fail/serial-not-hex", context.Background(), iss, &RevocationList{IssuerKeyID: iss.KeyID,
			Entries: []Revocation{{Serial: "xyz", Time: time.Now()}}}, EInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crl, err := tt.iss.SignCRL(tt.ctx, tt.list, w)
			if code := ErrorCodeOf(err); code != tt.code || crl != nil {
				t.Fatalf("SignCRL = %v, %v (code %q), want code %q", crl, err, code, tt.code)
			}
		})
	}
}

// certWithout is iss's certificate again, self-signed by its key, without
// the key usage u.
func certWithout(t *testing.T, iss *Issuer, u x509.KeyUsage) *x509.Certificate {
	t.Helper()
	c := iss.Certificate
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "no " + fmt.Sprint(u)},
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, KeyUsage: c.KeyUsage &^ u, BasicConstraintsValid: true,
		IsCA: true, SubjectKeyId: c.SubjectKeyId}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, c.PublicKey, CryptoSigner(context.Background(), iss.Signer))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// BenchmarkSignCRL measures a CRL of 10,000 revocations signed by a P-256
// issuer: what a replica spends on each new CRL.
func BenchmarkSignCRL(b *testing.B) {
	iss := testIssuer(b, ECDSAP256)
	w := NewCRLWindow(time.Now(), time.Hour)
	list := &RevocationList{IssuerKeyID: iss.KeyID}
	for i := range 10000 {
		list.Add(Revocation{Serial: fmt.Sprintf("4%039x", i), Time: w.Start.Add(-time.Minute), Reason: ReasonKeyCompromise},
			int64(i+1))
	}
	var size int
	for b.Loop() {
		crl, err := iss.SignCRL(context.Background(), list, w)
		if err != nil {
			b.Fatal(err)
		}
		size = len(crl.DER)
	}
	b.ReportMetric(float64(size), "bytes")
}
