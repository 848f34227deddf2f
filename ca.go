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
	Logger  *slog.Logger
	Now     func() time.Time
	Rand    io.Reader
}

// CA is the issuing logic: authenticate, check, sign, record, in that order.
// It is safe for concurrent use and keeps no state of its own beyond the
// rate limiter: replicas sharing one store are interchangeable.
type CA struct {
	cfg CAConfig
	log *slog.Logger
}

// NewCA validates cfg and returns a CA.
func NewCA(cfg CAConfig) (*CA, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("ca policy: %w", err)
	}
	if cfg.Trust == nil || cfg.Authenticator == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("ca: trust, authenticator and audit log are required")
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
	return &CA{cfg: cfg, log: cfg.Logger}, nil
}

// Policy returns the CA's policy.
func (ca *CA) Policy() Policy { return ca.cfg.Policy }

// IssueRequest is one request for a certificate.
type IssueRequest struct {
	CSR         []byte        // DER
	TTL         time.Duration // zero: the policy's default
	Credentials Credentials
	// BundleFingerprint is the trust bundle the client says it holds.
	BundleFingerprint string
}

// Issue authenticates the request, checks its CSR against the policy, signs a
// leaf and commits its audit row, and only then returns it with the issuer
// that signed it. Every refusal is recorded too. Errors are *Error values.
func (ca *CA) Issue(ctx context.Context, req IssueRequest) (*Issuance, *Issuer, error) {
	caller, err := ca.cfg.Authenticator.Authenticate(ctx, req.Credentials)
	if err != nil {
		return nil, nil, ca.refuse(ctx, req, Caller{}, err)
	}
	iss, issuer, err := ca.issue(ctx, req, caller)
	if err != nil {
		return nil, nil, ca.refuse(ctx, req, caller, err)
	}
	return iss, issuer, nil
}

func (ca *CA) issue(ctx context.Context, req IssueRequest, caller Caller) (*Issuance, *Issuer, error) {
	if ca.cfg.Limiter != nil && !ca.cfg.Limiter.Allow(caller.Identity.String()) {
		return nil, nil, Errorf(ERateLimited, "too many certificates for %s; retry later", caller.Identity)
	}
	checked, err := ca.cfg.Policy.CheckCSR(req.CSR, caller.Identity)
	if err != nil {
		return nil, nil, err
	}
	ttl, err := ca.cfg.Policy.TTL(req.TTL)
	if err != nil {
		return nil, nil, err
	}
	issuer := ca.cfg.Trust.Trust().Issuer
	now := ca.cfg.Now().UTC().Truncate(time.Second)
	fields, err := ca.leaf(issuer, caller.Identity, checked, now, ttl)
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
		SANs:         []string{fields.DNSName, fields.URI},
		KeyAlgorithm: checked.KeyAlgorithm, KeySize: checked.KeySize,
		PublicKeySHA256: checked.PublicKeySHA256, CSRSHA256: checked.CSRSHA256,
		NotBefore: fields.NotBefore, NotAfter: fields.NotAfter, IssuedAt: now, IssuerKeyID: issuer.KeyID,
		Authenticator: caller.Authenticator, TokenSubject: caller.Subject, RemoteAddr: req.Credentials.RemoteAddr,
		BundleFingerprint: req.BundleFingerprint, Certificate: der,
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
func (ca *CA) leaf(issuer *Issuer, id Identity, checked *CheckedCSR, now time.Time, ttl time.Duration) (leafFields, error) {
	notAfter := now.Add(ttl)
	if limit := issuer.Certificate.NotAfter; notAfter.After(limit) {
		ca.log.Warn("certificate lifetime cut short by the issuer's expiry: rotate the issuer",
			"issuer_not_after", limit, "identity", id.String())
		notAfter = limit
	}
	serial, err := ca.serial()
	if err != nil {
		return leafFields{}, err
	}
	td := ca.cfg.Policy.TrustDomain
	dns := id.DNSName(td)
	spki := checked.Request.RawSubjectPublicKeyInfo
	ski := sha256.Sum256(spki)
	return leafFields{Serial: serial, CommonName: dns, DNSName: dns, URI: id.SPIFFEID(td).String(),
		NotBefore: now.Add(-ca.cfg.Policy.ClockSkew), NotAfter: notAfter, SPKI: spki, SKI: ski[:20],
		RSASubject: checked.KeyAlgorithm == "RSA"}, nil
}

// serial is a random positive 159-bit number: over the 128 bits the brief
// asks and inside RFC 5280's 20-octet limit.
func (ca *CA) serial() (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(ca.cfg.Rand, b); err != nil {
		return nil, WrapError(EInternal, err, "could not generate a serial number")
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // keep the top bit set so every serial is 20 octets and never zero
	return new(big.Int).SetBytes(b), nil
}

// refuse records a refusal and returns the refusal's error. A refusal the
// store cannot record is logged and still answered with its own reason: the
// caller needs to hear why, and no certificate left the server.
func (ca *CA) refuse(ctx context.Context, req IssueRequest, caller Caller, cause error) error {
	code := ErrorCodeOf(cause)
	r := &Refusal{
		Time:          ca.cfg.Now().UTC(),
		Reason:        code,
		Detail:        ErrorMessageOf(cause),
		Identity:      caller.Identity,
		Authenticator: caller.Authenticator,
		RemoteAddr:    req.Credentials.RemoteAddr,
	}
	level := slog.LevelInfo
	if code.Retryable() {
		level = slog.LevelError
	}
	ca.log.Log(ctx, level, "refused certificate request", LogEvent, EventRefused, "reason", code,
		"identity", caller.Identity.String(),
		"remote_addr", r.RemoteAddr, "error", cause)
	if err := ca.cfg.Audit.RecordRefusal(ctx, r); err != nil {
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

// RenewAfter is when the CA suggests the holder renew (RenewalTime).
func (i *Issuance) RenewAfter() time.Time { return RenewalTime(i.IssuedAt, i.NotAfter) }
