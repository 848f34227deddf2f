package rotor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// RevocationReason is an RFC 5280 CRLReason code.
type RevocationReason int

// The reasons a certificate may be revoked for (RFC 5280 5.3.1; 7, 8 are
// not used: 7 is unassigned and removeFromCRL applies only to delta CRLs).
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonCACompromise         RevocationReason = 2
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonCertificateHold      RevocationReason = 6
	ReasonPrivilegeWithdrawn   RevocationReason = 9
	ReasonAACompromise         RevocationReason = 10
)

var reasonNames = map[RevocationReason]string{ReasonUnspecified: "unspecified", ReasonKeyCompromise: "keyCompromise",
	ReasonCACompromise: "cACompromise", ReasonAffiliationChanged: "affiliationChanged", ReasonSuperseded: "superseded",
	ReasonCessationOfOperation: "cessationOfOperation", ReasonCertificateHold: "certificateHold",
	ReasonPrivilegeWithdrawn: "privilegeWithdrawn", ReasonAACompromise: "aACompromise"}

// String is the reason's RFC 5280 name, e.g. keyCompromise.
func (r RevocationReason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Valid reports whether r is an RFC 5280 reason a CRL may carry.
func (r RevocationReason) Valid() bool { _, ok := reasonNames[r]; return ok }

// ParseRevocationReason reads an RFC 5280 reason name ("" is unspecified).
func ParseRevocationReason(name string) (RevocationReason, error) {
	if name == "" {
		return ReasonUnspecified, nil
	}
	for r, n := range reasonNames {
		if n == name {
			return r, nil
		}
	}
	return 0, Errorf(EInvalid, "revocation reason %q is not an RFC 5280 reason name such as keyCompromise or superseded", name)
}

// Revocation is the record of one revoked certificate.
type Revocation struct {
	Serial  string
	Time    time.Time
	Reason  RevocationReason
	Actor   string
	Comment string
}

// Denial is an identity on the deny list: refused whatever its credentials.
type Denial struct {
	Identity Identity
	Time     time.Time
	Actor    string
	Reason   string
}

// Actor is who takes an admin action: an admin token or certificate
// (from its Caller), or the rotor-ca command on the store.
type Actor struct {
	Name       string // a token's name and subject, a certificate's subject, cli:<user>
	Kind       string // the authenticator that accepted it, or ActorCLI
	RemoteAddr string
}

// ActorCLI is the Kind of an action taken with rotor-ca on the store.
const ActorCLI = "cli"

// AdminAction is the audit record of one admin action.
type AdminAction struct {
	Time   time.Time
	Actor  Actor
	Action string // one of the Action constants
	Target string // namespace/service-account, a serial, a token subject
	Reason string
	Detail string
}

// Admin actions, as admin_actions rows name them.
const (
	ActionDeny        = "identity.deny"
	ActionAllow       = "identity.allow"
	ActionRevoke      = "certificate.revoke"
	ActionTokenCreate = "token.create"
	ActionTokenRevoke = "token.revoke"
	ActionPrune       = "audit.prune" // rotor-ca prune deleted the oldest audit rows
)

// AdminStore keeps what admins change. Each change is committed in one
// transaction with its AdminAction, so no action goes unrecorded and no
// record describes an action that did not happen. Methods are safe for
// concurrent use and return EStoreUnavailable when the store cannot answer.
type AdminStore interface {
	// DenyIdentity puts d on the deny list (EConflict if it is there) and,
	// with revoke, revokes every live certificate of d's identity; it
	// returns their serials.
	DenyIdentity(ctx context.Context, d Denial, revoke bool, a AdminAction) ([]string, error)
	// AllowIdentity takes id off the deny list (ENotFound if not on it).
	AllowIdentity(ctx context.Context, id Identity, a AdminAction) error
	// RevokeCertificate revokes r.Serial (ENotFound if no such issuance,
	// EConflict if revoked already).
	RevokeCertificate(ctx context.Context, r Revocation, a AdminAction) error
	// DeniedIdentities lists the deny list.
	DeniedIdentities(ctx context.Context) ([]Denial, error)
}

// Denylist is the deny list as last read from the store, so the CA checks
// every request against it without a query. Run refreshes it; a denial on
// any replica reaches every replica within one refresh interval. Safe for
// concurrent use; the zero value denies no one until its first refresh.
type Denylist struct {
	denied atomic.Pointer[map[Identity]bool]
}

// Denied reports whether id is on the list.
func (d *Denylist) Denied(id Identity) bool {
	m := d.denied.Load()
	return m != nil && (*m)[id]
}

// Refresh reads the list from src now.
func (d *Denylist) Refresh(ctx context.Context, src interface {
	DeniedIdentities(context.Context) ([]Denial, error)
}) error {
	list, err := src.DeniedIdentities(ctx)
	if err != nil {
		return err
	}
	m := make(map[Identity]bool, len(list))
	for _, den := range list {
		m[den.Identity] = true
	}
	d.denied.Store(&m)
	return nil
}

// Run refreshes the list from src every interval until ctx ends; a failed
// refresh keeps the last list.
func (d *Denylist) Run(ctx context.Context, src interface {
	DeniedIdentities(context.Context) ([]Denial, error)
}, every time.Duration, log *slog.Logger) {
	Periodically(ctx, every, log, "refresh the deny list (checking against the last one)", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		return d.Refresh(rctx, src)
	})
}

// Periodically runs fn every interval until ctx ends. A failure is logged
// at ERROR once ("could not " + what), and the next success at INFO, so a
// long outage costs two log lines, not one per tick.
func Periodically(ctx context.Context, every time.Duration, log *slog.Logger, what string, fn func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := fn(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Error("could not "+what, "error", err)
			failing = true
		case err == nil && failing:
			log.Info("succeeded again: " + what)
			failing = false
		}
	}
}

// set changes one identity on this replica's copy at once, so the replica
// that took the action enforces it before its next refresh.
func (d *Denylist) set(id Identity, denied bool) {
	for {
		old := d.denied.Load()
		m := make(map[Identity]bool)
		if old != nil {
			for k := range *old {
				m[k] = true
			}
		}
		if denied {
			m[id] = true
		} else {
			delete(m, id)
		}
		if d.denied.CompareAndSwap(old, &m) {
			return
		}
	}
}

// Events of admin actions, as logged under LogEvent.
const (
	EventDenied  = "identity.denied"
	EventAllowed = "identity.allowed"
	EventRevoked = "certificate.revoked"
)

// AuthenticateAdmin authenticates the caller of an admin action: a
// workload's credential is refused with EForbidden. Both refusals are
// recorded.
func (ca *CA) AuthenticateAdmin(ctx context.Context, cred Credentials) (Caller, error) {
	caller, err := ca.Authenticate(ctx, cred)
	if err != nil {
		return Caller{}, err
	}
	if !caller.Admin {
		return Caller{}, ca.refuse(ctx, cred.RemoteAddr, caller,
			Errorf(EForbidden, "this needs an admin credential (rotor-ca token create --admin); %s is a workload", caller.Identity))
	}
	return caller, nil
}

// adminStore is the store for admin actions, or the error that there is
// none.
func (ca *CA) adminStore() (AdminStore, error) {
	if ca.cfg.Admin == nil {
		return nil, Errorf(EForbidden, "admin actions are not enabled on this CA")
	}
	return ca.cfg.Admin, nil
}

func needReason(reason string) error {
	if reason == "" {
		return Errorf(EInvalid, "a reason is required: the audit says why")
	}
	if len(reason) > 1024 {
		return Errorf(EInvalid, "the reason must be at most 1024 bytes")
	}
	return nil
}

// DenyIdentity puts id on the deny list for admin (from Authenticate-
// Admin, at remoteAddr) and, with revoke, revokes its live certificates,
// whose serials it returns. Every replica refuses id from its next deny
// list refresh; this one at once.
func (ca *CA) DenyIdentity(ctx context.Context, admin Caller, remoteAddr string, id Identity, reason string, revoke bool) ([]string, error) {
	st, err := ca.adminStore()
	if err == nil {
		err = errors.Join(id.Validate(), needReason(reason))
	}
	if err != nil {
		return nil, err
	}
	now := ca.cfg.Now().UTC()
	actor := admin.Actor(remoteAddr)
	revoked, err := st.DenyIdentity(ctx, Denial{Identity: id, Time: now, Actor: actor.Name, Reason: reason}, revoke,
		AdminAction{Time: now, Actor: actor, Reason: reason})
	if err != nil {
		return nil, err
	}
	if ca.cfg.Denylist != nil {
		ca.cfg.Denylist.set(id, true)
	}
	ca.log.Warn("identity denied", LogEvent, EventDenied, "identity", id.String(), "actor", actor.Name,
		"remote_addr", remoteAddr, "revoked", len(revoked))
	return revoked, nil
}

// AllowIdentity takes id off the deny list for admin.
func (ca *CA) AllowIdentity(ctx context.Context, admin Caller, remoteAddr string, id Identity, reason string) error {
	st, err := ca.adminStore()
	if err == nil {
		err = errors.Join(id.Validate(), needReason(reason))
	}
	if err != nil {
		return err
	}
	actor := admin.Actor(remoteAddr)
	if err := st.AllowIdentity(ctx, id, AdminAction{Time: ca.cfg.Now().UTC(), Actor: actor, Reason: reason}); err != nil {
		return err
	}
	if ca.cfg.Denylist != nil {
		ca.cfg.Denylist.set(id, false)
	}
	ca.log.Warn("identity allowed again", LogEvent, EventAllowed, "identity", id.String(), "actor", actor.Name,
		"remote_addr", remoteAddr)
	return nil
}

// RevokeCertificate revokes the certificate serial for admin: it can no
// longer renew over mTLS, the CRL lists it and its renewal window opens.
func (ca *CA) RevokeCertificate(ctx context.Context, admin Caller, remoteAddr, serial string, reason RevocationReason, comment string) error {
	st, err := ca.adminStore()
	if err != nil {
		return err
	}
	if comment == "" {
		comment = reason.String()
	}
	if err := needReason(comment); err != nil {
		return err
	}
	if !reason.Valid() {
		return Errorf(EInvalid, "revocation reason %d is not an RFC 5280 reason", int(reason))
	}
	now := ca.cfg.Now().UTC()
	actor := admin.Actor(remoteAddr)
	r := Revocation{Serial: strings.ToLower(serial), Time: now, Reason: reason, Actor: actor.Name, Comment: comment}
	if err := st.RevokeCertificate(ctx, r, AdminAction{Time: now, Actor: actor, Reason: comment}); err != nil {
		return err
	}
	ca.log.Warn("certificate revoked", LogEvent, EventRevoked, "serial", r.Serial, "reason", reason.String(),
		"actor", actor.Name, "remote_addr", remoteAddr)
	return nil
}
