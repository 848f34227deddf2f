package signer

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// selfSigned issues a CA certificate for s's key with s itself through
// x509.CreateCertificate and rotor.CryptoSigner, as the CA does, and checks
// the signature and key of the result.
func selfSigned(t testing.TB, s rotor.Signer) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cert, err := rotor.CreateCACertificate(ctx, rotor.CAParams{Name: "signer test", Lifetime: time.Hour, Now: time.Now()}, s.Public(), nil, s)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Fatalf("certificate signature does not verify: %v", err)
	}
	if err := CheckCertificate(s, cert); err != nil {
		t.Fatalf("CheckCertificate: %v", err)
	}
	return cert
}

// wantCode fails t unless err carries code ("" means no error).
func wantCode(t testing.TB, err error, code rotor.ErrorCode) {
	t.Helper()
	if got := rotor.ErrorCodeOf(err); got != code {
		t.Fatalf("error code = %q, want %q (error: %v)", got, code, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func slogText(v any) string {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "pkcs11", v)
	return b.String()
}
