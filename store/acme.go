package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rotor-dev/rotor"
)

// ACME's state (rotor.ACMEStore): EAB keys, accounts, orders and nonces.
// Creating and revoking an EAB key and binding, deactivating or re-keying
// an account are admin actions, each in one transaction with its chained
// admin_action_log row. Nonces and orders are not audit records: the
// issuance an order ends in is.

// CreateEABKey implements rotor.EABStore.
func (s *Store) CreateEABKey(ctx context.Context, k rotor.EABKey, a rotor.AdminAction) error {
	if err := checkEABKey(k); err != nil {
		return err
	}
	return s.metrics.time("create_eab_key", func() error { return s.b.CreateEABKey(ctx, k, a) })
}

// EABKey implements rotor.EABStore.
func (s *Store) EABKey(ctx context.Context, kid string) (rotor.EABKey, error) {
	return timed(s.metrics, "eab_key", func() (rotor.EABKey, error) { return s.b.EABKey(ctx, kid) })
}

// EABKeys implements rotor.EABStore.
func (s *Store) EABKeys(ctx context.Context) ([]rotor.EABKey, error) {
	return timed(s.metrics, "eab_keys", func() ([]rotor.EABKey, error) { return s.b.EABKeys(ctx) })
}

// RevokeEABKey implements rotor.EABStore.
func (s *Store) RevokeEABKey(ctx context.Context, kid string, a rotor.AdminAction) (rotor.EABKey, error) {
	return timed(s.metrics, "revoke_eab_key", func() (rotor.EABKey, error) { return s.b.RevokeEABKey(ctx, kid, a) })
}

// BindACMEAccount implements rotor.ACMEAccountStore.
func (s *Store) BindACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	if err := acct.Identity.Validate(); err != nil {
		return err
	}
	return s.metrics.time("bind_acme_account", func() error { return s.b.BindACMEAccount(ctx, acct, a) })
}

// ACMEAccount implements rotor.ACMEAccountStore.
func (s *Store) ACMEAccount(ctx context.Context, id string) (rotor.ACMEAccount, error) {
	return timed(s.metrics, "acme_account", func() (rotor.ACMEAccount, error) { return s.b.ACMEAccount(ctx, id) })
}

// ACMEAccountByKey implements rotor.ACMEAccountStore.
func (s *Store) ACMEAccountByKey(ctx context.Context, thumbprint string) (rotor.ACMEAccount, error) {
	return timed(s.metrics, "acme_account_by_key", func() (rotor.ACMEAccount, error) {
		return s.b.ACMEAccountByKey(ctx, thumbprint)
	})
}

// UpdateACMEAccount implements rotor.ACMEAccountStore.
func (s *Store) UpdateACMEAccount(ctx context.Context, acct rotor.ACMEAccount, a rotor.AdminAction) error {
	return s.metrics.time("update_acme_account", func() error { return s.b.UpdateACMEAccount(ctx, acct, a) })
}

// CreateACMEOrder implements rotor.ACMEOrderStore.
func (s *Store) CreateACMEOrder(ctx context.Context, o rotor.ACMEOrder) error {
	return s.metrics.time("create_acme_order", func() error { return s.b.CreateACMEOrder(ctx, o) })
}

// ACMEOrder implements rotor.ACMEOrderStore.
func (s *Store) ACMEOrder(ctx context.Context, id string) (rotor.ACMEOrder, error) {
	return timed(s.metrics, "acme_order", func() (rotor.ACMEOrder, error) { return s.b.ACMEOrder(ctx, id) })
}

// MoveACMEOrder implements rotor.ACMEOrderStore.
func (s *Store) MoveACMEOrder(ctx context.Context, id, from, to, serial string) error {
	return s.metrics.time("move_acme_order", func() error { return s.b.MoveACMEOrder(ctx, id, from, to, serial) })
}

// StoreNonce implements rotor.ACMEOrderStore. Expired nonces are swept
// at most once per nonceSweepEvery per process, not with every insert
// (every ACME answer stores a nonce), so the table holds about one nonce
// lifetime's and a minute's more.
func (s *Store) StoreNonce(ctx context.Context, nonce string, now, expires time.Time) error {
	return s.metrics.time("store_nonce", func() error {
		if last := s.nonceSwept.Load(); now.UnixNano()-last >= int64(nonceSweepEvery) &&
			s.nonceSwept.CompareAndSwap(last, now.UnixNano()) {
			if err := s.b.sweepNonces(ctx, now); err != nil {
				return err
			}
		}
		return s.b.insertNonce(ctx, nonce, expires)
	})
}

// nonceSweepEvery spaces the sweeps of expired nonces.
const nonceSweepEvery = time.Minute

// UseNonce implements rotor.ACMEOrderStore.
func (s *Store) UseNonce(ctx context.Context, nonce string, now time.Time) error {
	return s.metrics.time("use_nonce", func() error { return s.b.UseNonce(ctx, nonce, now) })
}

// acmeBackend is what each database implements of ACME.
type acmeBackend interface {
	rotor.EABStore
	rotor.ACMEAccountStore
	CreateACMEOrder(ctx context.Context, o rotor.ACMEOrder) error
	ACMEOrder(ctx context.Context, id string) (rotor.ACMEOrder, error)
	MoveACMEOrder(ctx context.Context, id, from, to, serial string) error
	UseNonce(ctx context.Context, nonce string, now time.Time) error
	// insertNonce and sweepNonces are StoreNonce's two writes, which
	// Store spaces apart.
	insertNonce(ctx context.Context, nonce string, expires time.Time) error
	sweepNonces(ctx context.Context, now time.Time) error
}

// checkEABKey refuses a key the schema would refuse or that could never
// bind.
func checkEABKey(k rotor.EABKey) error {
	if !rotor.ValidEABKeyID(k.KeyID) || len(k.HMAC) < 16 {
		return rotor.Errorf(rotor.EInvalid, "EAB key %q needs an ID as NewEABKey makes and an HMAC key of 16 bytes or more", k.KeyID)
	}
	return k.Identity.Validate()
}

// eabAction is the record of creating k: never its HMAC key.
func eabAction(k rotor.EABKey, a rotor.AdminAction) *rotor.AdminAction {
	a.Action, a.Target = rotor.ActionEABCreate, k.KeyID
	a.Detail = "EAB key for " + k.Identity.String()
	if !k.ExpiresAt.IsZero() {
		a.Detail += ", expires " + utc(k.ExpiresAt).Format(time.RFC3339)
	}
	return &a
}

// eabRevocable says why k cannot be revoked, or nil.
func eabRevocable(k rotor.EABKey) error {
	switch {
	case !k.BoundAt.IsZero():
		return rotor.Errorf(rotor.EConflict, "EAB key %s bound account %s already: deactivate or deny instead", k.KeyID, k.AccountID)
	case !k.RevokedAt.IsZero():
		return rotor.Errorf(rotor.EConflict, "EAB key %s was revoked already", k.KeyID)
	}
	return nil
}

func errEABSpent(kid string) error {
	return rotor.Errorf(rotor.EUnauthenticated, "EAB key %s was used or revoked meanwhile", kid)
}

func errAccountKeyTaken() error {
	return rotor.Errorf(rotor.EConflict, "this account key belongs to another account already")
}

func errReplaced(serial string) error {
	return rotor.Errorf(rotor.EConflict, "certificate %s was replaced by another order already", serial)
}

func marshalNames(names []string) string {
	b, _ := json.Marshal(names) // []string cannot fail
	return string(b)
}

const eabColumns = `kid, hmac_key, namespace, service_account, created_at, expires_at, bound_at, revoked_at,
	coalesce(account_id, '')`

const accountColumns = `id, key_thumbprint, jwk, namespace, service_account, eab_kid, status, created_at`

const orderColumns = `id, account_id, dns_names, status, created_at, expires_at, coalesce(serial, ''),
	coalesce(replaces, '')`
