package rotor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"time"
)

// CAConfig wires a CA. Trust, Authenticator, Audit and Policy are required.
type CAConfig struct {
	Policy        Policy
	Trust         TrustSource
	Authenticator Authenticator
	Audit         AuditLog
	// Limiter, if set, caps issuances per identity.
	Limiter *Limiter
	// SourceLimiter, if set, caps failed authentications per remote host:
	// a source past it is refused with ERateLimited before any
	// authenticator runs, so a flood of bad credentials costs no lookups.
	SourceLimiter *Limiter
	// MaxInFlight caps the issuances being checked, signed and committed at
	// once; beyond it a request is refused at once with EOverloaded rather
	// than queued. Zero means no cap.
	MaxInFlight int
	// UnpacedRenewals, if set, gives every certificate renew_after at
	// RenewalTime instead of placing it by the CA's renewal schedule (see
	// PacedRenewalTime): the unpaced baseline a storm is measured against.
	UnpacedRenewals bool
	// RefusalBudget bounds the refusal rows of unauthenticated sources;
	// the zero value records every refusal as its own row.
	RefusalBudget RefusalBudget
	// Denylist, if set, is checked before every issuance: a denied
	// identity is refused with EDenied whatever its credentials.
	Denylist *Denylist
	// Admin, if set, takes admin actions (deny, allow, revoke); without it
	// they are refused.
	Admin  AdminStore
	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// CA is the issuing logic: authenticate, check, sign, record, in that order.
// It is safe for concurrent use and keeps no state of its own beyond rate
// limits, the in-flight count, the shedding bound, its schedule of the
// renewals it asked for and pending refusal summaries: replicas sharing
// one store are interchangeable.
type CA struct {
	cfg      CAConfig
	log      *slog.Logger
	refusals *refusalLog
	inFlight chan struct{}    // nil: no cap
	schedule *renewalSchedule // nil: unpaced
	shed     shedPacer
}

// NewCA validates cfg and returns a CA. Close it to commit pending refusal
// summaries.
func NewCA(cfg CAConfig) (*CA, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("ca policy: %w", err)
	}
	if cfg.Trust == nil || cfg.Authenticator == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("ca: trust, authenticator and audit log are required")
	}
	if cfg.MaxInFlight < 0 || cfg.RefusalBudget.Rows > 0 && cfg.RefusalBudget.Interval <= 0 {
		return nil, fmt.Errorf("ca: the in-flight cap must not be negative, and a refusal budget needs an interval")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	ca := &CA{cfg: cfg, log: cfg.Logger,
		refusals: &refusalLog{budget: cfg.RefusalBudget, audit: cfg.Audit, log: cfg.Logger}}
	if cfg.MaxInFlight > 0 {
		ca.inFlight = make(chan struct{}, cfg.MaxInFlight)
	}
	if !cfg.UnpacedRenewals {
		ca.schedule = &renewalSchedule{}
	}
	return ca, nil
}

// Close commits the refusal summaries not yet written. Call it before
// closing the audit store.
func (ca *CA) Close() { ca.refusals.close() }

// Policy returns the CA's policy.
func (ca *CA) Policy() Policy { return ca.cfg.Policy }

// IssueRequest is one request for a certificate.
type IssueRequest struct {
	CSR         []byte        // DER
	TTL         time.Duration // zero: the policy's default
	Credentials Credentials
	// BundleFingerprint is the trust bundle the client says it holds.
	BundleFingerprint string
	// Naming is how the leaf names the caller: Rotor's names by default,
	// Linkerd's for Linkerd's identity API.
	Naming Naming
	// Name, if set, is the identity name the requester asks for (the
	// identity field of Linkerd's Certify): it must be the leaf's DNS name
	// under Naming, else EForbidden, so a token for one service account
	// never certifies another's name.
	Name string
}

// Issue authenticates the request, then issues for the caller (IssueFor).
// Every refusal is recorded. Errors are *Error values.
func (ca *CA) Issue(ctx context.Context, req IssueRequest) (*Issuance, *Issuer, error) {
	caller, err := ca.Authenticate(ctx, req.Credentials)
	if err != nil {
		return nil, nil, err
	}
	return ca.IssueFor(ctx, caller, req)
}

// Authenticate turns credentials into a caller, recording a refusal when
// it cannot. Transports call it as soon as they have the credentials (the
// HTTP headers), before they read a request body, so an unauthenticated
// client never makes the CA buffer one.
func (ca *CA) Authenticate(ctx context.Context, cred Credentials) (Caller, error) {
	src := SourceOf(cred.RemoteAddr)
	if l := ca.cfg.SourceLimiter; l != nil {
		if ok, wait := l.Peek(src); !ok {
			return Caller{}, ca.refuse(ctx, cred.RemoteAddr, Caller{}, &Error{Code: ERateLimited,
				Message: "too many failed authentications from this address; retry later", RetryAfter: wait})
		}
	}
	// Good callers are never held up by the check: any number may be
	// authenticating at once from one address (a NAT, a node proxy). Bad
	// ones that passed it together are all paid for afterwards.
	caller, err := ca.cfg.Authenticator.Authenticate(ctx, cred)
	if l := ca.cfg.SourceLimiter; l != nil && err != nil && !ErrorCodeOf(err).Retryable() {
		l.Spend(src) // outages are not the source's fault
	}
	if err != nil {
		return Caller{}, ca.refuse(ctx, cred.RemoteAddr, Caller{}, err)
	}
	return caller, nil
}

// IssueFor checks req's CSR against the policy for caller (who came from
// Authenticate), signs a leaf and commits its audit row, and only then
// returns it with the issuer that signed it. Every refusal is recorded.
func (ca *CA) IssueFor(ctx context.Context, caller Caller, req IssueRequest) (*Issuance, *Issuer, error) {
	if ca.inFlight != nil {
		select {
		case ca.inFlight <- struct{}{}:
			defer func() { <-ca.inFlight }()
			ca.shed.serve(ca.cfg.Now())
		default:
			// Drawn per refusal, so the callers shed together do not all
			// come back together; over longer as the storm grows.
			return nil, nil, ca.refuse(ctx, req.Credentials.RemoteAddr, caller, &Error{Code: EOverloaded,
				RetryAfter: ca.shed.turnAway(ca.cfg.Now()),
				Message:    fmt.Sprintf("the CA is at its limit of %d issuances in flight; retry shortly", cap(ca.inFlight))})
		}
	}
	iss, issuer, err := ca.issue(ctx, req, caller)
	if err != nil {
		return nil, nil, ca.refuse(ctx, req.Credentials.RemoteAddr, caller, err)
	}
	return iss, issuer, nil
}

// Refuse records a refusal a transport decided on its own (a body too
// large, a malformed request) for caller (zero if not authenticated), and
// returns cause. Its code must be one a client can be answered with.
func (ca *CA) Refuse(ctx context.Context, remoteAddr string, caller Caller, cause error) error {
	return ca.refuse(ctx, remoteAddr, caller, cause)
}

// admit decides whether caller may have a certificate at all: not an
// admin, not denied, within its rate.
func (ca *CA) admit(caller Caller) error {
	if caller.Admin {
		return Errorf(EForbidden, "an admin credential never gets a workload certificate: use the workload's own token")
	}
	if err := ca.deniedErr(caller.Identity); err != nil {
		return err
	}
	if l := ca.cfg.Limiter; l != nil {
		if ok, wait := l.Take(caller.Identity.String()); !ok {
			return &Error{Code: ERateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("too many certificates for %s; retry later", caller.Identity)}
		}
	}
	return nil
}

func (ca *CA) issue(ctx context.Context, req IssueRequest, caller Caller) (*Issuance, *Issuer, error) {
	if err := ca.admit(caller); err != nil {
		return nil, nil, err
	}
	names, err := ca.cfg.Policy.names(caller.Identity, req.Naming)
	if err != nil {
		return nil, nil, err
	}
	if req.Name != "" && req.Name != names.dns {
		return nil, nil, Errorf(EForbidden, "requested identity %q is not the token's: %s", req.Name, names.dns)
	}
	checked, err := ca.cfg.Policy.checkCSR(req.CSR, names)
	if err != nil {
		return nil, nil, err
	}
	ttl, err := ca.cfg.Policy.TTL(req.TTL)
	if err != nil {
		return nil, nil, err
	}
	issuer := ca.cfg.Trust.Trust().Issuer
	now := ca.cfg.Now().UTC().Truncate(time.Second)
	fields, err := ca.leaf(issuer, caller.Identity, names, checked, now, ttl)
	if err != nil {
		return nil, nil, err
	}
	// The signer bounds its own time (signer.Monitored): it knows the
	// backend's deadline and counts the failures.
	der, err := issuer.signLeaf(ctx, fields)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, nil, err
		}
		return nil, nil, WrapError(ESignerUnavailable, err, "the issuing key could not sign; retry later")
	}
	record := &Issuance{
		Serial: hex.EncodeToString(fields.Serial.Bytes()), Identity: caller.Identity,
		SANs:         slices.DeleteFunc([]string{fields.DNSName, fields.URI}, func(s string) bool { return s == "" }),
		KeyAlgorithm: checked.KeyAlgorithm, KeySize: checked.KeySize,
		PublicKeySHA256: checked.PublicKeySHA256, CSRSHA256: checked.CSRSHA256,
		NotBefore: fields.NotBefore, NotAfter: fields.NotAfter, IssuedAt: now, IssuerKeyID: issuer.KeyID,
		Authenticator: caller.Authenticator, TokenSubject: caller.Subject, RemoteAddr: req.Credentials.RemoteAddr,
		BundleFingerprint: req.BundleFingerprint, Certificate: der, Credential: caller.Credential,
	}
	if record.Credential == "" {
		record.Credential = caller.Subject
	}
	if err := ca.cfg.Audit.RecordIssuance(ctx, record); err != nil {
		return nil, nil, fmt.Errorf("record issuance %s: %w", record.Serial, err)
	}
	ca.log.Info("Issuing certificate for "+fields.DNSName, LogEvent, EventIssued, "identity", caller.Identity.String(),
		"serial", record.Serial, "not_before", record.NotBefore, "not_after", record.NotAfter,
		"authenticator", caller.Authenticator, "remote_addr", req.Credentials.RemoteAddr)
	return record, issuer, nil
}

// leaf decides what the leaf for id says: its names, a fresh serial, and a
// validity from now (backdated by the clock skew) for ttl, cut to the
// issuer's own expiry.
func (ca *CA) leaf(issuer *Issuer, id Identity, names leafNames, checked *CheckedCSR, now time.Time,
	ttl time.Duration) (leafFields, error) {
	notAfter := now.Add(ttl)
	if limit := issuer.Certificate.NotAfter; notAfter.After(limit) {
		ca.log.Warn("certificate lifetime cut short by the issuer's expiry: rotate the issuer",
			"issuer_not_after", limit, "identity", id.String())
		notAfter = limit
	}
	serial, err := ca.serial(now, notAfter)
	if err != nil {
		return leafFields{}, err
	}
	spki := checked.Request.RawSubjectPublicKeyInfo
	ski := sha256.Sum256(spki)
	return leafFields{Serial: serial, CommonName: names.dns, DNSName: names.dns, URI: names.uri,
		NotBefore: now.Add(-ca.cfg.Policy.ClockSkew), NotAfter: notAfter, SPKI: spki, SKI: ski[:20],
		RSASubject: checked.KeyAlgorithm == "RSA", CRLDistributionPoint: ca.cfg.Policy.CRLDistributionPoint(issuer.KeyID)}, nil
}

// serial is a positive 159-bit number, random but for the last five
// octets, which carry where in the renewal spread the holder of a
// certificate issued at now and expiring at notAfter should renew (see
// PacedRenewalTime): 119 random bits, over the 64 RFC 5280 asks, inside
// its 20-octet limit.
func (ca *CA) serial(now, notAfter time.Time) (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(ca.cfg.Rand, b); err != nil {
		return nil, WrapError(EInternal, err, "could not generate a serial number")
	}
	b[0] &= 0x7f
	b[0] |= 0x40      // keep the top bit set so every serial is 20 octets and never zero
	tail := [5]byte{} // RenewalTime itself
	if ca.schedule != nil {
		tail = paceTail(ca.schedule.place(now, notAfter))
	}
	copy(b[len(b)-5:], tail[:])
	return new(big.Int).SetBytes(b), nil
}

// refuse records a refusal and returns the refusal's error. A refusal the
// store cannot record is logged and still answered with its own reason: the
// caller needs to hear why, and no certificate left the server.
func (ca *CA) refuse(ctx context.Context, remoteAddr string, caller Caller, cause error) error {
	code := ErrorCodeOf(cause)
	r := &Refusal{
		Time:          ca.cfg.Now().UTC(),
		Reason:        code,
		Detail:        ErrorMessageOf(cause),
		Identity:      caller.Identity,
		Authenticator: caller.Authenticator,
		RemoteAddr:    remoteAddr,
	}
	level := slog.LevelInfo
	switch {
	case HungUp(ctx):
		// The caller hung up: whatever failed (a commit or a signature
		// given up with its context) is its doing, not an outage.
		level = slog.LevelDebug
	case code == ERateLimited || code == EOverloaded:
		level = slog.LevelDebug // a flood must not flood the log either
	case code.ServerFault():
		level = slog.LevelError
	}
	ca.log.Log(ctx, level, "refused request", LogEvent, EventRefused, "reason", code,
		"identity", caller.Identity.String(), "remote_addr", remoteAddr, "error", cause)
	// A client that hung up is still refused on the record: the row does
	// not wait on the caller's context.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := ca.refusals.record(rctx, r); err != nil {
		ca.log.Error("could not record refusal", "reason", code, "error", err)
	}
	return cause
}

// RenewShare is how far into a certificate's life, counted from its
// issuance, its holder should renew: the CA's renew_after, the agent's
// default and the CA's own serving certificate all use it. A third of the
// lifetime is left to ride out a CA outage.
const RenewShare = 2.0 / 3

// RenewalTime is RenewShare of the way from issuedAt to notAfter.
func RenewalTime(issuedAt, notAfter time.Time) time.Time {
	return issuedAt.Add(time.Duration(float64(notAfter.Sub(issuedAt)) * RenewShare))
}

// RenewAfter is when the CA suggests the holder renew (PacedRenewalTime).
func (i *Issuance) RenewAfter() time.Time { return PacedRenewalTime(i.Serial, i.IssuedAt, i.NotAfter) }
