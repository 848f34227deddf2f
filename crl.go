package rotor

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// RevocationList is what one CRL lists: the revocations of the certificates
// one issuer key signed that are still valid, or expired only recently (see
// RevocationStore.Revocations), in serial order.
type RevocationList struct {
	IssuerKeyID string
	// Entries carry Serial, Time and Reason; a CRL says nothing of the
	// actor or the comment, so the store does not read them.
	Entries []Revocation
	Version RevocationVersion
}

// RevocationVersion tells whether a RevocationList changed. A revocation
// raises Seq, since audit-chain places only grow and are taken in commit
// order; an entry dropping off when its certificate expires lowers Count.
// Two lists of one issuer key with equal versions hold the same entries,
// unless someone deleted revocations of certificates still valid.
type RevocationVersion struct {
	// Count is how many entries the list holds.
	Count int
	// Seq is the highest audit-chain place (revoked_certificates.chain_seq)
	// among them, 0 for none.
	Seq int64
}

// Add appends r, which has audit-chain place seq, to l and counts it in
// l's version.
func (l *RevocationList) Add(r Revocation, seq int64) {
	l.Entries = append(l.Entries, r)
	l.Version.Count++
	l.Version.Seq = max(l.Version.Seq, seq)
}

// DefaultCRLValidity is how long a CRL is valid (nextUpdate - thisUpdate)
// unless configured otherwise. Short, like the certificates it lists: a
// relying party that cannot fetch a new one notices within the hour.
const DefaultCRLValidity = time.Hour

// MinCRLValidity is the shortest CRL validity: its windows must be whole
// seconds, the precision of a CRL's times.
const MinCRLValidity = 2 * time.Second

// CRLWindow is one period of an issuer's CRLs. A window starts every half
// validity, at multiples of that step since the zero time, so every replica
// configured with the same validity agrees on the windows without talking to
// the others. Each window's CRLs are valid until its NextUpdate, a whole
// validity after its start, so a CRL fetched at the end of a window still
// has half its validity left.
type CRLWindow struct {
	Start time.Time
	// Refresh is when the next window starts and a new CRL is due.
	Refresh time.Time
	// NextUpdate is the nextUpdate of the window's CRLs.
	NextUpdate time.Time
	// Since is where the window's entries start: revocations of
	// certificates that expired before it are left off. It is one step
	// before Start, so a certificate is still listed on the first CRL of
	// the window after its expiry, as RFC 5280 (3.3) asks.
	Since time.Time
}

// NewCRLWindow is the window that holds now for CRLs valid for validity, at
// least MinCRLValidity (cut to whole seconds).
func NewCRLWindow(now time.Time, validity time.Duration) CRLWindow {
	validity = validity.Truncate(time.Second)
	step := (validity / 2).Truncate(time.Second)
	start := now.UTC().Truncate(step)
	return CRLWindow{Start: start, Refresh: start.Add(step), NextUpdate: start.Add(validity), Since: start.Add(-step)}
}

// CRLNumber is the number of the CRL of a list with version v in window w:
// the window's start in Unix seconds, then v.Seq in the low 64 bits. Numbers
// grow from window to window whatever the list, and within a window with
// every revocation, and every replica that read the same list in the same
// window gives it the same number, with no coordination. (A list can shrink
// only at a window's start, when its certificates expired before Since.)
// It needs 99 bits of the 159 RFC 5280 allows.
func CRLNumber(w CRLWindow, v RevocationVersion) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(w.Start.Unix()), 64)
	return n.Or(n, new(big.Int).SetUint64(uint64(v.Seq)))
}

// CRL is a signed CRL and what it says.
type CRL struct {
	DER         []byte
	IssuerKeyID string
	Number      *big.Int
	ThisUpdate  time.Time
	NextUpdate  time.Time
	Window      CRLWindow
	// Version is the version of the list it was made from.
	Version RevocationVersion
}

// SignCRL signs list, which must be of iss's key, as a CRL of window w
// (RFC 5280 v2): the issuer's subject, authorityKeyIdentifier and CRL
// number (CRLNumber), and for each entry its serial, time and reason code
// (none for unspecified, as RFC 5280 5.3.1 says). thisUpdate is the window's
// start, or the newest revocation's second if that is later, since a CRL
// cannot have been issued before a revocation it lists; it is the same on
// every replica. A signer failure is ESignerUnavailable; an issuer
// certificate without the cRLSign key usage is EInternal.
func (iss *Issuer) SignCRL(ctx context.Context, list *RevocationList, w CRLWindow) (*CRL, error) {
	if list.IssuerKeyID != iss.KeyID {
		return nil, Errorf(EInternal, "the revocations of issuer %s cannot go on issuer %s's CRL", list.IssuerKeyID, iss.KeyID)
	}
	if iss.Certificate.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, Errorf(EInternal, "issuer certificate %q lacks the cRLSign key usage, so it cannot sign CRLs",
			iss.Certificate.Subject)
	}
	thisUpdate := w.Start
	entries := make([]x509.RevocationListEntry, len(list.Entries))
	for i, r := range list.Entries {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, Errorf(EInternal, "revoked serial %q is not hex", r.Serial)
		}
		at := r.Time.UTC().Truncate(time.Second)
		entries[i] = x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at, ReasonCode: int(r.Reason)}
		if at.After(thisUpdate) {
			thisUpdate = at
		}
	}
	crl := &CRL{IssuerKeyID: iss.KeyID, Number: CRLNumber(w, list.Version), ThisUpdate: thisUpdate,
		NextUpdate: w.NextUpdate, Window: w, Version: list.Version}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: crl.Number,
		ThisUpdate: thisUpdate, NextUpdate: w.NextUpdate, RevokedCertificateEntries: entries},
		iss.Certificate, CryptoSigner(ctx, iss.Signer))
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, fmt.Errorf("sign CRL %s of issuer %s: %w", crl.Number.Text(16), iss.KeyID, err)
		}
		// What is left after the checks above is the signature.
		return nil, WrapError(ESignerUnavailable, err, "the issuing key could not sign the CRL; retry later")
	}
	crl.DER = der
	return crl, nil
}
