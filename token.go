package rotor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
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
	Identity  Identity // zero for an admin token
	CreatedAt time.Time
	// Admin tokens authenticate admin actions, never a certificate
	// request; Name says who holds one (any token may have a name).
	Admin bool
	Name  string
	// ExpiresAt and RevokedAt are zero for never.
	ExpiresAt, RevokedAt time.Time
	// LastUsedAt is about when the token last authenticated (the store
	// updates it at most once a minute), zero if never.
	LastUsedAt time.Time
}

// Subject names the token in audit rows without revealing it.
func (t StaticToken) Subject() string { return "token:" + hex.EncodeToString(t.Hash[:6]) }

// ParseTokenSubject reads a token's Subject, token:<12 hex digits>, into
// the hash prefix it names. Anything else is EInvalid.
func ParseTokenSubject(subject string) ([]byte, error) {
	h, ok := strings.CutPrefix(subject, "token:")
	if !ok || !IsLowerHex(h, 12, 12) {
		return nil, Errorf(EInvalid, "%q is not a token subject: want token: and 12 lowercase hex digits, as token list prints", subject)
	}
	prefix, _ := hex.DecodeString(h)
	return prefix, nil
}

// Usable reports why the token may not authenticate at now: revoked or
// expired (EUnauthenticated), or nil.
func (t StaticToken) Usable(now time.Time) error {
	switch {
	case !t.RevokedAt.IsZero():
		return Errorf(EUnauthenticated, "static token %s was revoked", t.Subject())
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return Errorf(EUnauthenticated, "static token %s has expired", t.Subject())
	}
	return nil
}

// NewAdminToken makes a random admin token named name, valid for
// lifetime (zero: until revoked), and returns the token, to show once, and
// its stored form.
func NewAdminToken(random io.Reader, name string, lifetime time.Duration, now time.Time) (string, StaticToken, error) {
	if name == "" {
		return "", StaticToken{}, Errorf(EInvalid, "an admin token needs a name: who it is for")
	}
	token, st, err := newToken(random, now)
	st.Admin, st.Name = true, name
	if lifetime > 0 {
		st.ExpiresAt = now.UTC().Add(lifetime)
	}
	return token, st, err
}

// NewStaticToken makes a random token for id and returns the token, to show
// once, and its stored form.
func NewStaticToken(random io.Reader, id Identity, now time.Time) (string, StaticToken, error) {
	if err := id.Validate(); err != nil {
		return "", StaticToken{}, err
	}
	token, st, err := newToken(random, now)
	st.Identity = id
	return token, st, err
}

func newToken(random io.Reader, now time.Time) (string, StaticToken, error) {
	if random == nil {
		random = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", StaticToken{}, fmt.Errorf("generate token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, StaticToken{Hash: HashToken(token), CreatedAt: now.UTC()}, nil
}

// HashToken is the lookup key of a static token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
