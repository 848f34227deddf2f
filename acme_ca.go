package rotor

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"time"
)

// Admin actions of ACME, as admin_action_log rows name them.
const (
	ActionEABCreate      = "acme.eab.create"
	ActionEABRevoke      = "acme.eab.revoke"
	ActionACMEBind       = "acme.account.bind"
	ActionACMEDeactivate = "acme.account.deactivate"
	ActionACMEKeyChange  = "acme.account.key-change"
)

// EventACMEBound: an EAB key bound an ACME account to its identity.
// Attributes: identity, account, eab_kid, remote_addr.
const EventACMEBound = "acme.account.bound"

// ACMEOrderLifetime is how long an order may wait for its finalize.
const ACMEOrderLifetime = time.Hour

// ACME decides for the ACME adapter: who binds an account, what an account
// may order, what its CSR may say and what it may revoke. Every refusal is
// recorded like the REST API's, with the account's identity. It is safe
// for concurrent use.
type ACME struct {
	CA    *CA
	Store ACMEStore
}

// BindAccount binds acct (Key and KeyThumbprint set) to the identity of
// the EAB key kid, once checkMAC (the adapter's check of the binding's
// HMAC with the key) passes, and spends the key. It returns the account
// as stored.
func (m ACME) BindAccount(ctx context.Context, remoteAddr, kid string, checkMAC func(key []byte) error, acct ACMEAccount) (ACMEAccount, error) {
	ca := m.CA
	now := ca.cfg.Now().UTC()
	k, err := m.Store.EABKey(ctx, kid)
	if ErrorCodeOf(err) == ENotFound {
		err = Errorf(EUnauthenticated, "no EAB key %q: make one with rotor-ca acme eab create", kid)
	}
	if err == nil {
		err = k.Usable(now)
	}
	if err == nil {
		if err = checkMAC(k.HMAC); err != nil {
			err = WrapError(EUnauthenticated, err, "the external account binding does not verify with EAB key %s", kid)
		}
	}
	caller := Caller{Identity: k.Identity, Authenticator: AuthenticatorACME, Subject: "eab:" + kid}
	if err == nil {
		err = ca.deniedErr(k.Identity)
	}
	if err != nil {
		return ACMEAccount{}, ca.refuse(ctx, remoteAddr, caller, err)
	}
	if acct.ID, err = RandomID(ca.cfg.Rand, 16); err != nil {
		return ACMEAccount{}, err
	}
	acct.Identity, acct.EABKeyID, acct.Status, acct.CreatedAt = k.Identity, kid, ACMEStatusValid, now
	a := AdminAction{Time: now, Actor: Actor{Name: acct.Subject(), Kind: AuthenticatorACME, RemoteAddr: remoteAddr},
		Action: ActionACMEBind, Target: k.Identity.String(), Detail: "EAB key " + kid + " spent by account " + acct.ID}
	if err := m.Store.BindACMEAccount(ctx, acct, a); err != nil {
		return ACMEAccount{}, ca.refuse(ctx, remoteAddr, caller, err)
	}
	ca.log.Info("ACME account bound", LogEvent, EventACMEBound, "identity", k.Identity.String(),
		"account", acct.ID, "eab_kid", kid, "remote_addr", remoteAddr)
	return acct, nil
}

// Caller is the caller an account's requests are made as: its identity,
// the account as subject and its EAB key as the credential its
// certificates descend from. A deactivated account is refused.
func (m ACME) Caller(ctx context.Context, remoteAddr string, acct ACMEAccount) (Caller, error) {
	c := Caller{Identity: acct.Identity, Authenticator: AuthenticatorACME, Subject: acct.Subject(),
		Credential: "eab:" + acct.EABKeyID}
	if acct.Status != ACMEStatusValid {
		return Caller{}, m.CA.refuse(ctx, remoteAddr, c, Errorf(EUnauthenticated, "ACME account %s is %s", acct.ID, acct.Status))
	}
	return c, nil
}

// NewOrder checks and stores an order for caller's account: its DNS names
// must be exactly the identity's one name (EForbidden otherwise), the
// identity must not be denied (EDenied), and replaces, if set, must name
// a certificate this account got (EInvalid) that no other order replaced
// (EConflict).
func (m ACME) NewOrder(ctx context.Context, remoteAddr string, caller Caller, acct ACMEAccount, names []string, replaces string) (ACMEOrder, error) {
	ca := m.CA
	now := ca.cfg.Now().UTC().Truncate(time.Second)
	o := ACMEOrder{AccountID: acct.ID, DNSNames: names, Status: ACMEStatusReady, CreatedAt: now,
		Expires: now.Add(ACMEOrderLifetime), Replaces: replaces}
	err := m.checkOrder(ctx, caller, names, replaces)
	if err == nil {
		o.ID, err = RandomID(ca.cfg.Rand, 16)
	}
	if err == nil {
		err = m.Store.CreateACMEOrder(ctx, o)
	}
	if err != nil {
		return ACMEOrder{}, ca.refuse(ctx, remoteAddr, caller, err)
	}
	return o, nil
}

func (m ACME) checkOrder(ctx context.Context, caller Caller, names []string, replaces string) error {
	want := caller.Identity.DNSName(m.CA.cfg.Policy.TrustDomain)
	if err := m.CA.deniedErr(caller.Identity); err != nil {
		return err
	}
	if len(names) != 1 || names[0] != want {
		return Errorf(EForbidden, "account of %s may order only %s, not %v", caller.Identity, want, names)
	}
	if replaces == "" {
		return nil
	}
	// Another account's certificate is answered as an unknown one, so
	// replaces cannot probe which serials exist.
	st, err := m.Store.CertificateStatus(ctx, replaces)
	if err == nil && st.Issuance.TokenSubject != caller.Subject || ErrorCodeOf(err) == ENotFound {
		return Errorf(EInvalid, "this ACME account has no certificate %s to replace", replaces)
	}
	if err != nil {
		return err
	}
	return nil
}

// Finalize issues the certificate of order o for caller from csr (DER),
// whose DNS names must be exactly the order's, through the same checks,
// signature and audit row as any issuance (CA.IssueFor), then marks the
// order valid. The audit row is committed before the order turns valid.
func (m ACME) Finalize(ctx context.Context, remoteAddr string, caller Caller, o ACMEOrder, csr []byte) (*Issuance, *Issuer, error) {
	ca := m.CA
	if o.Status != ACMEStatusReady {
		return nil, nil, ca.refuse(ctx, remoteAddr, caller, Errorf(EConflict, "order %s is %s, not ready", o.ID, o.Status))
	}
	if !ca.cfg.Now().Before(o.Expires) {
		return nil, nil, ca.refuse(ctx, remoteAddr, caller, Errorf(EConflict, "order %s expired at %s", o.ID, o.Expires.Format(time.RFC3339)))
	}
	if r, err := x509.ParseCertificateRequest(csr); err != nil {
		return nil, nil, ca.refuse(ctx, remoteAddr, caller, WrapError(EBadCSR, err, "CSR is not a valid PKCS#10 request"))
	} else if !sameNames(r.DNSNames, o.DNSNames) {
		return nil, nil, ca.refuse(ctx, remoteAddr, caller,
			Errorf(EBadCSR, "the CSR names %v, the order %v: they must be the same", r.DNSNames, o.DNSNames))
	}
	// Claimed first, so that of two finalizes racing for one order only
	// one issues; a failed issuance gives the order back.
	if err := m.Store.MoveACMEOrder(ctx, o.ID, ACMEStatusReady, ACMEStatusProcessing, ""); err != nil {
		return nil, nil, ca.refuse(ctx, remoteAddr, caller, err)
	}
	iss, issuer, err := ca.IssueFor(ctx, caller, IssueRequest{CSR: csr, Credentials: Credentials{RemoteAddr: remoteAddr}})
	if err != nil {
		if rerr := m.Store.MoveACMEOrder(context.WithoutCancel(ctx), o.ID, ACMEStatusProcessing, ACMEStatusReady, ""); rerr != nil {
			ca.log.Warn("ACME order left processing after a failed issuance", "order", o.ID, "error", rerr)
		}
		return nil, nil, err
	}
	if err := m.Store.MoveACMEOrder(ctx, o.ID, ACMEStatusProcessing, ACMEStatusValid, iss.Serial); err != nil {
		return nil, nil, err
	}
	return iss, issuer, nil
}

func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// Revoke revokes the certificate st describes through the admin
// revocation (CA.RevokeCertificate), for caller: an account of the
// certificate's identity, or (byKey) whoever proved they hold the
// certificate's key.
func (m ACME) Revoke(ctx context.Context, remoteAddr string, caller Caller, st *CertificateStatus, byKey bool, reason RevocationReason) error {
	ca := m.CA
	serial := st.Issuance.Serial
	if byKey {
		caller = Caller{Authenticator: AuthenticatorACME, Subject: "certificate-key:" + serial}
	} else if caller.Identity != st.Issuance.Identity {
		return ca.refuse(ctx, remoteAddr, caller,
			Errorf(EForbidden, "certificate %s is not of this account's identity %s", serial, caller.Identity))
	}
	if st.Revocation != nil {
		return Errorf(EConflict, "certificate %s is revoked already", serial)
	}
	err := ca.RevokeCertificate(ctx, caller, remoteAddr, serial, reason, "ACME revokeCert: "+reason.String())
	if err != nil && !errors.Is(err, context.Canceled) {
		return ca.refuse(ctx, remoteAddr, caller, err)
	}
	return err
}

// Deactivate deactivates acct for its holder (RFC 8555 7.3.6): it can no
// longer order, finalize or revoke.
func (m ACME) Deactivate(ctx context.Context, remoteAddr string, acct ACMEAccount) (ACMEAccount, error) {
	acct.Status = ACMEStatusDeactivated
	return acct, m.update(ctx, remoteAddr, acct, ActionACMEDeactivate, "deactivated by its holder")
}

// ChangeKey moves acct to a new account key (RFC 8555 7.3.5), whose
// possession the adapter checked: EConflict if another account has it.
func (m ACME) ChangeKey(ctx context.Context, remoteAddr string, acct ACMEAccount, key []byte, thumbprint string) (ACMEAccount, error) {
	old := acct.KeyThumbprint
	acct.Key, acct.KeyThumbprint = key, thumbprint
	return acct, m.update(ctx, remoteAddr, acct, ActionACMEKeyChange, "key "+old+" replaced by "+thumbprint)
}

func (m ACME) update(ctx context.Context, remoteAddr string, acct ACMEAccount, action, detail string) error {
	a := AdminAction{Time: m.CA.cfg.Now().UTC(), Actor: Actor{Name: acct.Subject(), Kind: AuthenticatorACME,
		RemoteAddr: remoteAddr}, Action: action, Target: acct.Identity.String(), Detail: detail}
	return m.Store.UpdateACMEAccount(ctx, acct, a)
}

// denied reports whether id is on the deny list.
// deniedErr is EDenied if id is on the deny list, else nil: one answer
// for the REST API, ACME binding and ACME orders alike.
func (ca *CA) deniedErr(id Identity) error {
	if d := ca.cfg.Denylist; d != nil && d.Denied(id) {
		return Errorf(EDenied, "identity %s is denied by the CA's operators", id)
	}
	return nil
}
