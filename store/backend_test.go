package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// backend is what the shared suite needs from a database: fresh ones, and
// a plain SQL door to check what the store wrote, as an operator would.
type backend struct {
	// fresh returns the URL of a new, empty database, removed after t.
	fresh func(t testing.TB) string
	// count runs a query returning one integer, outside the store.
	count func(t testing.TB, url, query string) int64
	// rows runs a query outside the store and counts the rows it returns.
	rows func(t testing.TB, url, query string) (int, error)
	// exec runs statements outside the store, as someone with plain SQL
	// access would.
	exec func(t testing.TB, url, query string)
	// timeLit is t as an SQL literal this backend's time columns compare
	// with.
	timeLit func(t time.Time) string
}

// open returns a store on a fresh, migrated database and its URL.
func (b backend) open(t testing.TB, opts store.Options) (*store.Store, string) {
	t.Helper()
	url := b.fresh(t)
	opts.Migrate = true
	if opts.Logger == nil {
		opts.Logger = discard
	}
	s, err := store.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

// newIssuance is a complete record, with a real certificate, as the CA
// would write it.
func newIssuance(t testing.TB, id rotor.Identity, issuedAt time.Time) *rotor.Issuance {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := make([]byte, 20)
	rand.Read(serial)
	serial[0] = serial[0]&0x7f | 0x40
	issuedAt = issuedAt.UTC().Truncate(time.Second)
	dns := id.DNSName("cluster.local")
	uri := id.SPIFFEID("cluster.local")
	tmpl := &x509.Certificate{SerialNumber: new(big.Int).SetBytes(serial), DNSNames: []string{dns},
		NotBefore: issuedAt.Add(-time.Minute), NotAfter: issuedAt.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &rotor.Issuance{
		Serial:            hex.EncodeToString(serial),
		Identity:          id,
		SANs:              []string{dns, uri.String()},
		KeyAlgorithm:      "ECDSA",
		KeySize:           256,
		PublicKeySHA256:   hex.EncodeToString(serial[:16]) + hex.EncodeToString(serial[:16]),
		CSRSHA256:         hex.EncodeToString(serial[4:20]) + hex.EncodeToString(serial[4:20]),
		NotBefore:         tmpl.NotBefore,
		NotAfter:          tmpl.NotAfter,
		IssuedAt:          issuedAt,
		IssuerKeyID:       "0a1b2c3d",
		Authenticator:     "token",
		TokenSubject:      "token:0a1b2c3d4e5f",
		RemoteAddr:        "127.0.0.1:40000",
		BundleFingerprint: "sha256:ab",
		Certificate:       der,
	}
}

// discard keeps expected commit failures out of the test output.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// testAction is the admin action tests create tokens with.
var testAction = rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}
