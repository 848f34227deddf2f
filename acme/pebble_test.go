package acme_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"
	xacme "golang.org/x/crypto/acme"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// pebbleDifferences are the steps of pebbleFlow where a client sees
// something else from Rotor than from Pebble, the reference ACME server,
// each with what it sees from each and why. TestPebble fails on a
// difference not listed here, and on a listed one that is gone or has
// changed. docs/acme.md "Compared with Pebble" is the same table, one row
// a step, which TestPebble checks.
var pebbleDifferences = []struct {
	step, pebble, rotor, reason string
}{
	{"newAccount with EAB", "status=valid orders=true", "status=valid orders=false",
		"Rotor's account object has no orders URL: the audit log is the record of what an identity got"},
	{"newAccount reusing a spent EAB key", "status=valid", "problem=unauthorized/403",
		"Rotor's EAB keys are single-use: binding an account spends and erases the HMAC key, which the CA must otherwise keep"},
	{"newOrder", "status=pending authorizations=1", "status=ready authorizations=1",
		"the EAB binding proves the identity, so Rotor's authorizations are valid at once and the order is ready"},
	{"authorization", "status=pending challenges=dns-01:pending,dns-account-01:pending,dns-persist-01:pending,http-01:pending,tls-alpn-01:pending",
		"status=valid challenges=http-01:valid",
		"Rotor runs no challenge: one challenge object, already valid, because some clients choke on an empty list"},
	{"finalize", "certs=2 dns=[DNS] uris=0", "certs=2 dns=[DNS] uris=1",
		"a Rotor certificate is the workload leaf POST /v1/certificates issues: the DNS name and the identity's SPIFFE ID"},
	{"newOrder for a name of another identity", "status=pending authorizations=1", "problem=rejectedIdentifier/400",
		"Rotor issues only the bound identity's names; Pebble validates any name"},
	{"newOrder with notBefore", "status=ready authorizations=1", "problem=malformed/400",
		"Rotor's policy sets every certificate's lifetime, so it refuses notBefore and notAfter; Pebble accepts them (and reuses the valid authorization)"},
	{"lego obtain and renew", "challenges-solved=1 dns=[DNS]", "challenges-solved=0 dns=[DNS]",
		"lego needs a solver configured against both; Pebble calls it once (the renewal reuses the authorization), Rotor's valid authorizations never do"},
}

// pebbleStep is one thing a client does, and what it sees, normalized so
// that the same behaviour reads the same from either server: statuses,
// problem types and shapes, never IDs, URLs or detail texts.
type pebbleStep struct {
	name string
	do   func(f *pebbleFlow) (string, error)
}

// pebbleFlow is the state a run of the steps carries: the server, the
// x/crypto client and what it got.
type pebbleFlow struct {
	t        *testing.T
	tgt      *acmeTarget
	kid      string
	mac      []byte
	c        *xacme.Client
	order    *xacme.Order
	leaf     []byte
	nonces   *nonceSpoiler
	legoSeen int // lego solver calls
}

// acmeTarget is a server the flow runs against.
type acmeTarget struct {
	name   string
	dir    string
	client *http.Client
	eab    func(t testing.TB) (string, []byte)
	dns    string // the name the account may order
	other  string // a name of another identity
}

var pebbleSteps = []pebbleStep{
	{"newAccount with EAB", func(f *pebbleFlow) (string, error) {
		f.kid, f.mac = f.tgt.eab(f.t)
		f.c = f.client(mustKey(f.t, "ecdsa"))
		a, err := f.c.Register(f.t.Context(), &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: f.kid, Key: f.mac}},
			xacme.AcceptTOS)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("status=%s orders=%t", a.Status, a.OrdersURL != ""), nil
	}},
	{"newAccount without EAB", func(f *pebbleFlow) (string, error) {
		return account(f.client(mustKey(f.t, "ecdsa")).Register(f.t.Context(), &xacme.Account{}, xacme.AcceptTOS))
	}},
	{"newAccount with a wrong HMAC key", func(f *pebbleFlow) (string, error) {
		kid, _ := f.tgt.eab(f.t)
		return account(f.client(mustKey(f.t, "ecdsa")).Register(f.t.Context(), &xacme.Account{
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: bytes.Repeat([]byte{7}, 32)}}, xacme.AcceptTOS))
	}},
	{"newAccount with an unknown EAB key ID", func(f *pebbleFlow) (string, error) {
		return account(f.client(mustKey(f.t, "ecdsa")).Register(f.t.Context(), &xacme.Account{
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: "no-such-key", Key: f.mac}}, xacme.AcceptTOS))
	}},
	{"newAccount reusing a spent EAB key", func(f *pebbleFlow) (string, error) {
		return account(f.client(mustKey(f.t, "rsa")).Register(f.t.Context(), &xacme.Account{
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: f.kid, Key: f.mac}}, xacme.AcceptTOS))
	}},
	{"onlyReturnExisting with the account's key", func(f *pebbleFlow) (string, error) {
		return account(f.c.GetReg(f.t.Context(), ""))
	}},
	{"onlyReturnExisting with an unknown key", func(f *pebbleFlow) (string, error) {
		return account(f.client(mustKey(f.t, "ecdsa")).GetReg(f.t.Context(), ""))
	}},
	{"newOrder", func(f *pebbleFlow) (string, error) {
		var err error
		f.order, err = f.c.AuthorizeOrder(f.t.Context(), xacme.DomainIDs(f.tgt.dns))
		return order(f.order, err)
	}},
	{"authorization", func(f *pebbleFlow) (string, error) {
		z, err := f.c.GetAuthorization(f.t.Context(), f.order.AuthzURLs[0])
		if err != nil {
			return "", err
		}
		var chals []string
		for _, ch := range z.Challenges {
			chals = append(chals, ch.Type+":"+ch.Status)
		}
		slices.Sort(chals)
		return fmt.Sprintf("status=%s challenges=%s", z.Status, strings.Join(chals, ",")), nil
	}},
	{"order once its authorizations are done", func(f *pebbleFlow) (string, error) {
		o, err := f.authorize(f.order)
		if err != nil {
			return "", err
		}
		f.order = o
		return "status=" + o.Status, nil
	}},
	{"finalize", func(f *pebbleFlow) (string, error) {
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{f.tgt.dns}}, mustKey(f.t, "ecdsa"))
		if err != nil {
			return "", err
		}
		// CreateCertFromOrder, not CreateOrderCert: Pebble's finalize
		// answers "processing" with no Location to poll.
		chain, _, err := f.c.CreateCertFromOrder(f.t.Context(), f.order, csr, true)
		if err != nil {
			return "", err
		}
		f.leaf = chain[0]
		return f.chain(chain)
	}},
	{"newAccount with an RSA key", func(f *pebbleFlow) (string, error) {
		kid, mac := f.tgt.eab(f.t)
		return account(f.client(mustKey(f.t, "rsa")).Register(f.t.Context(), &xacme.Account{
			ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: mac}}, xacme.AcceptTOS))
	}},
	{"revokeCert signed by the certificate's key", func(f *pebbleFlow) (string, error) {
		ctx := f.t.Context()
		o, err := f.c.AuthorizeOrder(ctx, xacme.DomainIDs(f.tgt.dns))
		if err != nil {
			return "", err
		}
		if o, err = f.authorize(o); err != nil {
			return "", err
		}
		k := mustKey(f.t, "ecdsa")
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{f.tgt.dns}}, k)
		if err != nil {
			return "", err
		}
		chain, _, err := f.c.CreateCertFromOrder(ctx, o, csr, false)
		if err != nil {
			return "", err
		}
		return done(f.client(mustKey(f.t, "ecdsa")).RevokeCert(ctx, k, chain[0], xacme.CRLReasonKeyCompromise))
	}},
	{"certificate download", func(f *pebbleFlow) (string, error) {
		o, err := f.c.GetOrder(f.t.Context(), f.order.URI)
		if err != nil {
			return "", err
		}
		chain, err := f.c.FetchCert(f.t.Context(), o.CertURL, true)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(chain[0], f.leaf) {
			return "", errors.New("downloaded a leaf other than finalize's")
		}
		return fmt.Sprintf("status=%s certs=%d", o.Status, len(chain)), nil
	}},
	{"newOrder for a name of another identity", func(f *pebbleFlow) (string, error) {
		return order(f.c.AuthorizeOrder(f.t.Context(), xacme.DomainIDs(f.tgt.other)))
	}},
	{"newOrder with notBefore", func(f *pebbleFlow) (string, error) {
		return order(f.c.AuthorizeOrder(f.t.Context(), xacme.DomainIDs(f.tgt.dns), xacme.WithOrderNotBefore(time.Now().Add(time.Hour))))
	}},
	{"renewalInfo of the fresh certificate", func(f *pebbleFlow) (string, error) { return f.renewalInfo() }},
	{"revokeCert by the account", func(f *pebbleFlow) (string, error) {
		return done(f.c.RevokeCert(f.t.Context(), nil, f.leaf, xacme.CRLReasonKeyCompromise))
	}},
	{"revokeCert of a revoked certificate", func(f *pebbleFlow) (string, error) {
		return done(f.c.RevokeCert(f.t.Context(), nil, f.leaf, xacme.CRLReasonKeyCompromise))
	}},
	{"renewalInfo of the revoked certificate", func(f *pebbleFlow) (string, error) { return f.renewalInfo() }},
	{"keyChange", func(f *pebbleFlow) (string, error) {
		if err := f.c.AccountKeyRollover(f.t.Context(), mustKey(f.t, "ecdsa")); err != nil {
			return "", err
		}
		return account(f.c.GetReg(f.t.Context(), ""))
	}},
	{"badNonce retry", func(f *pebbleFlow) (string, error) {
		f.nonces.spoil() // the answer to the first request carries a spent nonce
		if _, err := f.c.GetReg(f.t.Context(), ""); err != nil {
			return "", err
		}
		s, err := account(f.c.GetReg(f.t.Context(), ""))
		return fmt.Sprintf("%s badNonce=%d", s, f.nonces.badNonces()), err
	}},
	{"lego obtain and renew", func(f *pebbleFlow) (string, error) {
		c, err := f.lego()
		if err != nil {
			return "", err
		}
		res, err := c.Certificate.Obtain(f.t.Context(), certificate.ObtainRequest{Domains: []string{f.tgt.dns}, Bundle: true,
			KeyType: certcrypto.EC256})
		if err != nil {
			return "", err
		}
		leaf, err := certcrypto.ParsePEMCertificate(res.Certificate)
		if err != nil {
			return "", err
		}
		info, err := c.Certificate.GetRenewalInfo(f.t.Context(), leaf)
		if err != nil {
			return "", err
		}
		if w := info.SuggestedWindow; !w.Start.After(time.Now()) || !w.End.After(w.Start) || w.End.After(leaf.NotAfter) {
			return "", fmt.Errorf("lego renewal window %+v of a fresh certificate", w)
		}
		renewed, err := c.Certificate.Renew(f.t.Context(), *res, &certificate.RenewOptions{UseARICertID: true, Bundle: true,
			KeyType: certcrypto.EC256})
		if err != nil {
			return "", err
		}
		if renewed.CertURL == res.CertURL {
			return "", errors.New("lego renewal returned the same certificate")
		}
		return fmt.Sprintf("challenges-solved=%d dns=%v", f.legoSeen, f.dnsNames(leaf)), nil
	}},
	{"account deactivation", func(f *pebbleFlow) (string, error) { return done(f.c.DeactivateReg(f.t.Context())) }},
	{"newOrder by a deactivated account", func(f *pebbleFlow) (string, error) {
		return order(f.c.AuthorizeOrder(f.t.Context(), xacme.DomainIDs(f.tgt.dns)))
	}},
}

// TestPebble runs the same client code, golang.org/x/crypto/acme and the
// lego library, against Pebble v2 in-process and against Rotor, and
// compares what the clients see step by step with pebbleDifferences.
func TestPebble(t *testing.T) {
	targets := []*acmeTarget{newPebbleTarget(t), newRotorTarget(t)}
	seen := map[string]map[string]string{} // target, step: observation
	for _, tgt := range targets {
		seen[tgt.name] = runPebbleFlow(t, tgt)
	}
	known := map[string]int{}
	for i, d := range pebbleDifferences {
		known[d.step] = i
	}
	for _, s := range pebbleSteps {
		p, r := seen["pebble"][s.name], seen["rotor"][s.name]
		i, listed := known[s.name]
		switch {
		case !listed && p != r:
			t.Errorf("%s: Pebble %q, Rotor %q: a difference not in pebbleDifferences", s.name, p, r)
		case listed && (p != pebbleDifferences[i].pebble || r != pebbleDifferences[i].rotor):
			t.Errorf("%s: Pebble %q, Rotor %q; pebbleDifferences says Pebble %q, Rotor %q (%s)", s.name, p, r,
				pebbleDifferences[i].pebble, pebbleDifferences[i].rotor, pebbleDifferences[i].reason)
		}
		delete(known, s.name)
	}
	for step := range known {
		t.Errorf("pebbleDifferences lists %q, which is no step", step)
	}
	doc, err := os.ReadFile("../docs/acme.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## Compared with Pebble")
	for _, d := range pebbleDifferences {
		if !strings.Contains(section, "\n| "+d.step+" |") {
			t.Errorf("docs/acme.md \"Compared with Pebble\" has no row for %q", d.step)
		}
	}
	if rows := strings.Count(section, "\n| ") - 1; rows != len(pebbleDifferences) { // less the header
		t.Errorf("docs/acme.md \"Compared with Pebble\" has %d rows, pebbleDifferences %d", rows, len(pebbleDifferences))
	}
}

// runPebbleFlow runs every step against tgt, in order, and returns what
// the client saw at each.
func runPebbleFlow(t *testing.T, tgt *acmeTarget) map[string]string {
	f := &pebbleFlow{t: t, tgt: tgt, nonces: &nonceSpoiler{rt: tgt.client.Transport}}
	tgt.client = &http.Client{Timeout: tgt.client.Timeout, Transport: f.nonces}
	seen := map[string]string{}
	for _, s := range pebbleSteps {
		obs, err := s.do(f)
		if err != nil {
			var ae *xacme.Error
			var pe *legoacme.ProblemDetails
			switch {
			case errors.Is(err, xacme.ErrNoAccount): // x/crypto's name for the problem
				obs = "problem=accountDoesNotExist"
			case errors.As(err, &ae):
				obs = fmt.Sprintf("problem=%s/%d", strings.TrimPrefix(ae.ProblemType, "urn:ietf:params:acme:error:"), ae.StatusCode)
			case errors.As(err, &pe):
				obs = fmt.Sprintf("problem=%s/%d", strings.TrimPrefix(pe.Type, "urn:ietf:params:acme:error:"), pe.HTTPStatus)
			default:
				obs = "error"
				t.Errorf("%s: %s: %v", tgt.name, s.name, err)
			}
		}
		seen[s.name] = strings.ReplaceAll(obs, tgt.dns, "DNS")
		t.Logf("%s: %s: %s", tgt.name, s.name, seen[s.name])
	}
	return seen
}

// authorize does what a client does with an order: answer http-01 on
// every pending authorization, wait for it, then wait for the order.
func (f *pebbleFlow) authorize(o *xacme.Order) (*xacme.Order, error) {
	ctx := f.t.Context()
	for _, u := range o.AuthzURLs {
		z, err := f.c.GetAuthorization(ctx, u)
		if err != nil {
			return nil, err
		}
		if z.Status != xacme.StatusPending {
			continue
		}
		i := slices.IndexFunc(z.Challenges, func(ch *xacme.Challenge) bool { return ch.Type == "http-01" })
		if i < 0 {
			return nil, errors.New("no http-01 challenge")
		}
		if _, err := f.c.Accept(ctx, z.Challenges[i]); err != nil {
			return nil, err
		}
		if _, err := f.c.WaitAuthorization(ctx, u); err != nil {
			return nil, err
		}
	}
	ready, err := f.c.WaitOrder(ctx, o.URI)
	if err != nil {
		return nil, err
	}
	ready.URI = o.URI // Pebble sends no Location answering a POST-as-GET
	return ready, nil
}

func (f *pebbleFlow) client(key crypto.Signer) *xacme.Client {
	return &xacme.Client{Key: key, DirectoryURL: f.tgt.dir, HTTPClient: f.tgt.client, UserAgent: "rotor-pebble-test"}
}

// account, order and done are what a client sees of an account, an
// order or an action.
func account(a *xacme.Account, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return "status=" + a.Status, nil
}

func order(o *xacme.Order, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("status=%s authorizations=%d", o.Status, len(o.AuthzURLs)), nil
}

func done(err error) (string, error) {
	if err != nil {
		return "", err
	}
	return "ok", nil
}

// chain is the shape of a downloaded chain: how many certificates, the
// leaf's DNS names and how many URI names it has. Each certificate must
// be signed by the next.
func (f *pebbleFlow) chain(der [][]byte) (string, error) {
	certs := make([]*x509.Certificate, len(der))
	for i, b := range der {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return "", fmt.Errorf("certificate %d: %w", i, err)
		}
		certs[i] = c
		if i > 0 {
			if err := certs[i-1].CheckSignatureFrom(c); err != nil {
				return "", fmt.Errorf("certificate %d is not signed by %d: %w", i-1, i, err)
			}
		}
	}
	return fmt.Sprintf("certs=%d dns=%v uris=%d", len(certs), f.dnsNames(certs[0]), len(certs[0].URIs)), nil
}

func (f *pebbleFlow) dnsNames(c *x509.Certificate) []string { return c.DNSNames }

// renewalInfo GETs the RFC 9773 renewal info of the flow's leaf, as the
// directory's renewalInfo URL and the certificate's ID name it.
func (f *pebbleFlow) renewalInfo() (string, error) {
	leaf, err := x509.ParseCertificate(f.leaf)
	if err != nil {
		return "", err
	}
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	if err := f.getJSON(f.tgt.dir, &dir); err != nil {
		return "", err
	}
	serial := leaf.SerialNumber.Bytes()
	if len(serial) == 0 || serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	u := strings.TrimSuffix(dir.RenewalInfo, "/") + "/" + b64(leaf.AuthorityKeyId) + "." + b64(serial)
	resp, err := f.tgt.client.Get(u)
	if err != nil {
		return "", fmt.Errorf("renewal info: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		SuggestedWindow struct{ Start, End time.Time } `json:"suggestedWindow"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil && resp.StatusCode == http.StatusOK {
		return "", fmt.Errorf("renewal info: %w", err)
	}
	w, now := body.SuggestedWindow, time.Now()
	window := "odd"
	switch {
	case !w.End.After(w.Start) || w.End.After(leaf.NotAfter):
	case !w.Start.After(now):
		window = "open"
	default:
		window = "ahead"
	}
	return fmt.Sprintf("status=%d window=%s retryAfter=%t", resp.StatusCode, window, resp.Header.Get("Retry-After") != ""), nil
}

func (f *pebbleFlow) getJSON(url string, v any) error {
	resp, err := f.tgt.client.Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// lego is a lego library client of the target with an account bound by a
// new EAB key, and an HTTP-01 "solver" that only counts its calls: Pebble
// treats every challenge valid, Rotor runs none.
func (f *pebbleFlow) lego() (*lego.Client, error) {
	u := &legoUser{key: mustKey(f.t, "ecdsa")}
	cfg := lego.NewConfig(u)
	cfg.CADirURL, cfg.HTTPClient = f.tgt.dir, f.tgt.client
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("lego client: %w", err)
	}
	if err := c.Challenge.SetHTTP01Provider(countingSolver{&f.legoSeen}); err != nil {
		return nil, fmt.Errorf("lego solver: %w", err)
	}
	kid, mac := f.tgt.eab(f.t)
	if u.reg, err = c.Registration.RegisterWithExternalAccountBinding(f.t.Context(), registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: b64(mac)}); err != nil {
		return nil, fmt.Errorf("lego register: %w", err)
	}
	return c, nil
}

type countingSolver struct{ n *int }

func (s countingSolver) Present(context.Context, string, string, string) error { *s.n++; return nil }
func (s countingSolver) CleanUp(context.Context, string, string, string) error { return nil }

// nonceSpoiler is an http.RoundTripper that, once spoiled, hands the
// client a nonce the server has already consumed in place of the next
// fresh one, and counts the badNonce problems that earns.
type nonceSpoiler struct {
	rt      http.RoundTripper
	mu      sync.Mutex
	last    string // the nonce of the last JWS sent
	spoiled bool
	bad     int
}

func (n *nonceSpoiler) spoil() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.spoiled = true
}

func (n *nonceSpoiler) badNonces() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bad
}

func (n *nonceSpoiler) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var jws struct{ Protected string }
		var hdr struct{ Nonce string }
		if json.Unmarshal(body, &jws) == nil {
			if p, err := base64.RawURLEncoding.DecodeString(jws.Protected); err == nil && json.Unmarshal(p, &hdr) == nil {
				n.mu.Lock()
				n.last = hdr.Nonce
				n.mu.Unlock()
			}
		}
	}
	resp, err := n.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	n.mu.Lock()
	defer n.mu.Unlock()
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte("urn:ietf:params:acme:error:badNonce")) {
		n.bad++
	}
	if n.spoiled && resp.Header.Get("Replay-Nonce") != "" && n.last != "" {
		resp.Header.Set("Replay-Nonce", n.last)
		n.spoiled = false
	}
	return resp, nil
}

// newRotorTarget is Rotor on SQLite (the store does not change what a
// client sees), as env starts it for the other ACME tests.
func newRotorTarget(t *testing.T) *acmeTarget {
	e := newEnv(t, backends[0].url(t), nil)
	return &acmeTarget{name: "rotor", dir: e.directory(), client: e.client,
		eab:   func(t testing.TB) (string, []byte) { return e.eab(t, webapp) },
		dns:   webapp.DNSName(trustDomain),
		other: rotor.Identity{Namespace: "default", ServiceAccount: "db"}.DNSName(trustDomain)}
}

// newPebbleTarget is Pebble wired in-process as its cmd/pebble does,
// with EAB required, every challenge treated valid without a request
// (PEBBLE_VA_ALWAYS_VALID), no random sleeps, no randomly rejected nonces
// and no reused authorizations, on 127.0.0.1 with a test certificate.
func newPebbleTarget(t *testing.T) *acmeTarget {
	for k, v := range map[string]string{"PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_VA_NOSLEEP": "1",
		"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "100"} {
		t.Setenv(k, v)
	}
	logger := log.New(io.Discard, "", 0)
	db := pebbledb.NewMemoryStore()
	ca := pebbleca.New(logger, db, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{"default": {Description: "default"}})
	va := pebbleva.New(logger, 0, 0, false, "", db)
	const eabKeys = 8
	macs := make([][]byte, eabKeys)
	for i := range macs {
		macs[i] = make([]byte, 32)
		rand.Read(macs[i])
		if err := db.AddExternalAccountKeyByID(fmt.Sprintf("kid-%d", i), b64(macs[i])); err != nil {
			t.Fatal(err)
		}
	}
	wfe := pebblewfe.New(logger, db, va, ca, []string{"pebble.letsencrypt.org"}, false, true, 0, 0)
	ts := httptest.NewUnstartedServer(wfe.Handler())
	pki := testpki.New(t, testpki.Options{Name: "Pebble Test"})
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pki.ServingCert(t)}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	var mu sync.Mutex
	next := 0
	return &acmeTarget{name: "pebble", dir: ts.URL + pebblewfe.DirectoryPath,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Bundle.Pool()}}},
		eab: func(t testing.TB) (string, []byte) {
			mu.Lock()
			defer mu.Unlock()
			if next == eabKeys {
				t.Fatal("out of Pebble EAB keys")
			}
			next++
			return fmt.Sprintf("kid-%d", next-1), macs[next-1]
		},
		dns:   webapp.DNSName(trustDomain),
		other: rotor.Identity{Namespace: "default", ServiceAccount: "db"}.DNSName(trustDomain)}
}
