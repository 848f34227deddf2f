package rotor_test

import (
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// FuzzCheckCSR: whatever bytes arrive as a CSR, the policy answers with a
// checked CSR or a bad-csr or identity-not-allowed refusal, never a panic
// or another code; and what it accepts is a CSR that verifies, for an
// allowed key, naming no one but the caller.
func FuzzCheckCSR(f *testing.F) {
	for _, kind := range []string{"ecdsa-p256", "ecdsa-p384", "ed25519", "ecdsa-p224"} {
		f.Add(testpki.CSR(f, testpki.Key(f, kind), nil))
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{})
	p := testPolicy()
	f.Fuzz(func(t *testing.T, der []byte) {
		got, err := p.CheckCSR(der, webapp)
		if err != nil {
			if c := rotor.ErrorCodeOf(err); c != rotor.EBadCSR && c != rotor.EForbidden {
				t.Fatalf("refused with %v, want bad-csr or identity-not-allowed", err)
			}
			return
		}
		if err := got.Request.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
		for _, n := range got.Request.DNSNames {
			if n != webapp.DNSName(p.TrustDomain) {
				t.Fatalf("accepted DNS name %q", n)
			}
		}
		if len(got.Request.IPAddresses)+len(got.Request.EmailAddresses) > 0 || len(got.Request.URIs) > 1 {
			t.Fatal("accepted IP, e-mail or several URI names")
		}
	})
}
