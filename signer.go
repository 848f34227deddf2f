package rotor

import (
	"context"
	"crypto"
	"io"
)

// Signer is the issuing key, wherever it lives: a file, an HSM, a cloud KMS.
//
// Implementations are safe for concurrent use. Sign follows crypto.Signer's
// contract (digest already hashed per opts, rand ignored by hardware keys)
// and also honours ctx's deadline and cancellation. When the backend cannot
// sign now (session lost, token gone, network), Sign returns an *Error with
// code ESignerUnavailable.
type Signer interface {
	Public() crypto.PublicKey
	Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// CryptoSigner binds s to ctx as a crypto.Signer, so that
// x509.CreateCertificate and tls can use any backend unchanged.
func CryptoSigner(ctx context.Context, s Signer) crypto.Signer {
	return ctxSigner{ctx: ctx, s: s}
}

type ctxSigner struct {
	ctx context.Context
	s   Signer
}

func (c ctxSigner) Public() crypto.PublicKey { return c.s.Public() }

func (c ctxSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return c.s.Sign(c.ctx, digest, opts)
}

// LocalSigner adapts an in-memory crypto.Signer (a key file's key) to Signer.
// It signs in microseconds, so it checks ctx only before it starts.
type LocalSigner struct {
	Key crypto.Signer
	// Rand is the randomness for signatures; nil means crypto/rand.
	Rand io.Reader
}

// Public implements Signer.
func (l LocalSigner) Public() crypto.PublicKey { return l.Key.Public() }

// Sign implements Signer.
func (l LocalSigner) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, WrapError(ESignerUnavailable, err, "signing cancelled")
	}
	return l.Key.Sign(l.Rand, digest, opts)
}
