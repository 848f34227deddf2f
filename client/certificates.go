package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rotor-dev/rotor"
)

// IssueRequest asks for a certificate for the caller's own identity.
type IssueRequest struct {
	// CSR is a PKCS#10 request, DER or PEM, signed by the workload's key.
	CSR []byte
	// TTL asks for a lifetime; zero means the CA's default.
	TTL time.Duration
	// Token authenticates with "Authorization: Bearer"; never logged.
	Token string
	// ClientCertificate authenticates over mTLS with a still-valid
	// certificate this CA issued (renewal). Set it or Token.
	ClientCertificate *tls.Certificate
	// BundleFingerprint tells the CA which trust bundle the caller holds
	// (header Rotor-Bundle-Fingerprint), for its audit; "" sends none.
	BundleFingerprint string
}

// Issued is a certificate the CA issued.
type Issued struct {
	Serial string
	// Name is the DNS identity, e.g.
	// webapp.default.serviceaccount.identity.rotor.cluster.local.
	Name     string
	SPIFFEID string
	Leaf     *x509.Certificate
	// Chain is the issuer and any intermediates, nearest first; never the
	// root.
	Chain []*x509.Certificate
	// PEM is the leaf then the chain: what cert.pem holds.
	PEM                             []byte
	NotBefore, NotAfter, RenewAfter time.Time
}

// Issue sends a CSR and returns the issued certificate after checking that
// it certifies the CSR's key. The key itself never leaves the caller.
func (c *Client) Issue(ctx context.Context, r IssueRequest) (*Issued, error) {
	der := r.CSR
	if block, _ := pem.Decode(r.CSR); block != nil {
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, rotor.WrapError(rotor.EBadCSR, err, "CSR is not a valid PKCS#10 request")
	}
	body := rotor.IssueBody{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}
	if r.TTL > 0 {
		body.TTL = r.TTL.String()
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "cannot encode the issue request")
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/certificates", bytes.NewReader(buf))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", rotor.MediaJSON)
	req.Header.Set("Accept", rotor.MediaJSON)
	if r.BundleFingerprint != "" {
		req.Header.Set(rotor.HeaderBundleFingerprint, r.BundleFingerprint)
	}
	hc := c.authorize(req, Credentials{Token: r.Token, ClientCertificate: r.ClientCertificate})
	resp, err := c.do(hc, req, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out rotor.IssuedCertificate
	if err := json.NewDecoder(io.LimitReader(resp.Body, rotor.MaxResponse)).Decode(&out); err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an unreadable certificate")
	}
	return issued(&out, csr.PublicKey)
}

// issued parses the answer and checks it certifies pub: a CA (or anything
// between) answering with someone else's certificate must not get it
// written beside our key.
func issued(b *rotor.IssuedCertificate, pub crypto.PublicKey) (*Issued, error) {
	leaf, err := rotor.ParseCertificates([]byte(b.Certificate))
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an unparsable certificate")
	}
	var chain []*x509.Certificate
	if b.Chain != "" {
		if chain, err = rotor.ParseCertificates([]byte(b.Chain)); err != nil {
			return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an unparsable chain")
		}
	}
	if !rotor.SamePublicKey(leaf[0].PublicKey, pub) {
		return nil, rotor.Errorf(rotor.EInternal, "CA answered certificate %s for a key other than the CSR's", b.Serial)
	}
	all := append(leaf[:1:1], chain...)
	return &Issued{Serial: b.Serial, Name: b.Identity, SPIFFEID: b.SPIFFEID, Leaf: leaf[0], Chain: chain,
		PEM: rotor.EncodeCertificates(all), NotBefore: b.NotBefore, NotAfter: b.NotAfter,
		RenewAfter: b.RenewAfter}, nil
}

// Credentials prove who calls: a bearer token, or a certificate this CA
// issued presented over mTLS.
type Credentials struct {
	Token             string // never logged
	ClientCertificate *tls.Certificate
}

// authorize puts cred on req and returns the HTTP client to send it with.
func (c *Client) authorize(req *http.Request, cred Credentials) *http.Client {
	if cred.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cred.Token)
	}
	if cred.ClientCertificate != nil {
		return c.withCertificate(cred.ClientCertificate)
	}
	return c.http
}

// Certificate looks up the issuance with the given serial (lowercase hex),
// as its own identity or an admin (cred). Another identity's serial, or
// one the CA does not know, gives rotor.EForbidden to a workload and
// rotor.ENotFound to an admin.
func (c *Client) Certificate(ctx context.Context, serial string, cred Credentials) (*rotor.Issuance, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/certificates/"+url.PathEscape(serial), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", rotor.MediaJSON)
	resp, err := c.do(c.authorize(req, cred), req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b rotor.CertificateRecord
	if err := json.NewDecoder(io.LimitReader(resp.Body, rotor.MaxResponse)).Decode(&b); err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an unreadable certificate record")
	}
	rec, err := b.Issuance()
	if err != nil {
		return nil, err
	}
	if rec.Serial != serial {
		return nil, rotor.Errorf(rotor.EInternal, "CA answered record %s for serial %s", rec.Serial, serial)
	}
	return rec, nil
}
