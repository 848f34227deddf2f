package ceiling

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// loopbackIPs are the serving certificate's addresses.
var loopbackIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// Bare is the bare CA: it decodes the CSR, parses it and checks its
// signature, and signs a 24 h leaf for its key with x509.CreateCertificate,
// which also verifies the signature it made. A bad request gets 400.
func (p *PKI) Bare() http.Handler {
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Issuer.Raw}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		der, err := p.sign(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cert, _ := x509.ParseCertificate(der) // just made: it parses
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(issued{Serial: cert.SerialNumber.Text(16), Chain: chain,
			Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))})
	})
}

// sign reads one request body and returns the leaf's DER.
func (p *PKI) sign(body io.Reader) ([]byte, error) {
	var in issueBody
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&in); err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(in.CSR))
	if block == nil {
		return nil, errNoPEM
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	serial, err := randSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/default/sa/bench")
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-20 * time.Second),
		NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"bench.default.serviceaccount.identity.rotor.cluster.local"}, URIs: []*url.URL{spiffe}}
	return x509.CreateCertificate(rand.Reader, tmpl, p.Issuer, csr.PublicKey, p.IssuerKey)
}

// errNoPEM is a CSR field without a PEM block.
var errNoPEM = errors.New("csr: no PEM block")
