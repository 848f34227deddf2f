package rotor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// TokenPrefix starts every static token, so a leaked one is recognisable by
// secret scanners and never mistaken for a JWT.
const TokenPrefix = "rotor_"

// StaticToken is the stored form of a static bearer token: its SHA-256 hash,
// never the token. Tokens are 256 random bits, so a plain hash cannot be
// brute-forced and lookups stay one indexed read.
type StaticToken struct {
	Hash      []byte
	Identity  Identity
	CreatedAt time.Time
}

// Subject names the token in audit rows without revealing it.
func (t StaticToken) Subject() string { return "token:" + hex.EncodeToString(t.Hash[:6]) }

// NewStaticToken makes a random token for id and returns the token, to show
// once, and its stored form.
func NewStaticToken(random io.Reader, id Identity, now time.Time) (string, StaticToken, error) {
	if err := id.Validate(); err != nil {
		return "", StaticToken{}, err
	}
	if random == nil {
		random = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", StaticToken{}, fmt.Errorf("generate token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, StaticToken{Hash: HashToken(token), Identity: id, CreatedAt: now.UTC()}, nil
}

// HashToken is the lookup key of a static token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
