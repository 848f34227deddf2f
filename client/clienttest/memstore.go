package clienttest

import (
	"context"
	"encoding/hex"
	"slices"
	"sync"

	"github.com/rotor-dev/rotor"
)

// memStore keeps what rotor.CA and the authenticators need in memory,
// following the contracts of rotor.AuditLog, rotor.IssuanceFinder and
// rotor.TokenStore.
type memStore struct {
	mu     sync.Mutex
	issued []*rotor.Issuance
	refuse []*rotor.Refusal
	tokens map[string]rotor.StaticToken
}

func newMemStore() *memStore { return &memStore{tokens: map[string]rotor.StaticToken{}} }

func (m *memStore) RecordIssuance(_ context.Context, iss *rotor.Issuance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *iss
	m.issued = append(m.issued, &c)
	return nil
}

func (m *memStore) RecordRefusal(_ context.Context, r *rotor.Refusal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *r
	m.refuse = append(m.refuse, &c)
	return nil
}

func (m *memStore) Issuance(_ context.Context, serial string) (*rotor.Issuance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, iss := range m.issued {
		if iss.Serial == serial {
			c := *iss
			return &c, nil
		}
	}
	return nil, rotor.Errorf(rotor.ENotFound, "no certificate with serial %s", serial)
}

func (m *memStore) CreateToken(_ context.Context, t rotor.StaticToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[hex.EncodeToString(t.Hash)] = t
	return nil
}

func (m *memStore) LookupToken(_ context.Context, hash []byte) (rotor.StaticToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hex.EncodeToString(hash)]
	if !ok {
		return rotor.StaticToken{}, rotor.Errorf(rotor.ENotFound, "unknown token")
	}
	return t, nil
}

func (m *memStore) issuances() []*rotor.Issuance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.issued)
}

func (m *memStore) refusals() []*rotor.Refusal {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.refuse)
}
