package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// issuedPair is a certificate the CA issued, verified, with its key and
// the bundle it was verified against: everything one WriteFiles needs.
type issuedPair struct {
	issued      *client.Issued
	key         crypto.Signer
	identity    rotor.Identity
	trustDomain string
	files       client.Files
	issuedAt    time.Time
	renewAt     time.Time
}

// renew makes one attempt to put a new certificate on disk and returns
// it. Nothing on disk changes unless the attempt has a complete, verified
// set to write.
//
// A pair whose write failed (a read-only or full disk) is held and written
// again on the next attempt before anything is asked of the CA: the disk is
// what failed, and asking again would have the CA sign, audit and throw away
// a certificate per retry. The CA is asked again only once the held pair is
// past its own renewal point and its write failed once more. A working agent
// would be renewing that pair by then anyway, so a disk that stays broken
// costs one issuance per renewal interval, the rate of a healthy agent.
// Until the new pair arrives the old one is kept, since a due certificate
// still beats an expired one; an expired pair is dropped.
func (a *Agent) renew(ctx context.Context) (*issuedPair, error) {
	if p := a.held; p != nil && a.now().Before(p.issued.NotAfter) {
		err := a.write(p)
		if err == nil {
			return p, nil
		}
		if a.now().Before(p.renewAt) {
			return nil, err
		}
	}
	if a.held != nil && !a.now().Before(a.held.issued.NotAfter) {
		a.held = nil
	}
	p, err := a.obtain(ctx)
	if err != nil {
		return nil, err
	}
	a.held = p
	if err := a.write(p); err != nil {
		return nil, err
	}
	return p, nil
}

// obtain gets a new certificate: refresh the bundle, make a key and CSR,
// ask the CA, check the answer.
func (a *Agent) obtain(ctx context.Context) (*issuedPair, error) {
	if err := a.ensureCA(ctx); err != nil {
		return nil, err
	}
	b, err := a.ca.Bundle(ctx, a.bundle)
	if err != nil {
		return nil, err
	}
	if !sameBundle(b, a.bundle) {
		if a.bundle != nil {
			a.log.Info("Trust bundle changed", "old", a.bundle.Fingerprint, "new", b.Fingerprint, "roots", len(b.Roots))
		}
		a.setBundle(b)
	}
	key, err := a.nextKey()
	if err != nil {
		return nil, withCause("key", err)
	}
	csr, err := client.NewCSR(key)
	if err != nil {
		return nil, err
	}
	req := client.IssueRequest{CSR: csr, TTL: a.cfg.TTL, BundleFingerprint: a.bundle.Fingerprint}
	if req.Token, req.ClientCertificate, err = a.credentials(); err != nil {
		return nil, err
	}
	issued, err := a.ca.Issue(ctx, req)
	if err != nil && req.ClientCertificate != nil && rotor.ErrorCodeOf(err) == rotor.EUnauthenticated {
		// The CA no longer takes the certificate (revoked, or the token
		// its lineage began with was revoked): ask again with the token at
		// once rather than after a refusal's backoff, which for a day-long
		// certificate is five minutes of renewing nothing.
		a.mtlsRefused = true
		if token, terr := a.token(); terr == nil {
			a.log.Info("The CA refused the current certificate; renewing with the token", "error", err)
			req.Token, req.ClientCertificate = token, nil
			issued, err = a.ca.Issue(ctx, req)
		}
	}
	if err != nil {
		return nil, err
	}
	a.mtlsRefused = false
	return a.prepare(issued, key)
}

// credentials pick what authenticates the next request: the current
// certificate while it is valid, since it proves the same identity without
// the token's exposure; else the token: once the certificate has expired,
// the CA refused it, or the CA's renewal window brought this renewal
// forward. A window does not say why it opened early, and one reason is
// revocation, after which the certificate cannot authenticate; the token
// works whatever the reason. If the token cannot be read then, the
// certificate may still do (the window may have opened for an issuer
// rotation).
func (a *Agent) credentials() (string, *tls.Certificate, error) {
	certOK := a.cur != nil && !a.mtlsRefused && a.now().Before(a.renewableUntil())
	if certOK && !a.cur.advised {
		return "", a.cur.cert, nil
	}
	token, err := a.token()
	if err != nil && certOK {
		return "", a.cur.cert, nil
	}
	return token, nil, err
}

// prepare checks an issued certificate against the trust bundle and
// assembles the files to write.
func (a *Agent) prepare(issued *client.Issued, key crypto.Signer) (*issuedPair, error) {
	inter := x509.NewCertPool()
	for _, c := range issued.Chain {
		inter.AddCert(c)
	}
	now := a.now()
	if _, err := issued.Leaf.Verify(x509.VerifyOptions{Roots: a.bundle.Pool(), Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, withCause("verify", fmt.Errorf("issued certificate %s does not chain to the trust bundle: %w", issued.Serial, err))
	}
	td, id, err := client.LeafIdentity(issued.Leaf)
	if err != nil {
		return nil, withCause("verify", err)
	}
	keyPEM, err := rotor.EncodePrivateKeyPEM(key)
	if err != nil {
		return nil, withCause("key", err)
	}
	return &issuedPair{issued: issued, key: key, identity: id, trustDomain: td, issuedAt: now,
		files:   client.Files{Cert: issued.PEM, Key: keyPEM, Bundle: a.bundle.PEM},
		renewAt: NextRenewal(issued.Leaf, now, issued.RenewAfter, a.cfg.RenewBefore, a.rand())}, nil
}

// write puts p on disk and makes it current. The version directory is
// named after p's issuance, not the write, so a restart measures the
// lifetime from when the CA issued it.
func (a *Agent) write(p *issuedPair) error {
	if err := a.cfg.Layout.Write(a.cfg.OutDir, p.files, p.issuedAt); err != nil {
		return withCause("write", err)
	}
	if a.cur != nil && a.cur.identity != p.identity {
		a.log.Warn("Identity changed", "old", a.cur.identity.String(), "new", p.identity.String())
	}
	prevExpiry, now := a.diskExpiry(), a.now()
	a.held, a.foundExpiry = nil, time.Time{}
	a.cur = &current{cert: keyPair(p.issued.Leaf, p.issued.Chain, p.key), key: p.key, identity: p.identity,
		trustDomain: p.trustDomain, issuedAt: p.issuedAt, renewAt: p.renewAt}
	a.nextPoll = now.Add(a.cfg.RenewalInfoInterval) // a certificate just issued has nothing to ask yet
	a.metrics.renewals.Inc()
	a.metrics.cert.certificate(p.identity, p.issued.Leaf, p.renewAt)
	a.log.Info("Certificate will expire in "+p.issued.NotAfter.Sub(now).Round(time.Second).String(),
		rotor.LogEvent, EventWritten, "identity", p.identity.String(), "serial", p.issued.Serial,
		"not_after", p.issued.NotAfter, "renew_at", p.renewAt, "out_dir", a.cfg.OutDir)
	if a.lapsed {
		a.lapsed = false
		a.log.Info("A valid certificate is back on disk", rotor.LogEvent, EventRecovered, "serial", p.issued.Serial,
			"not_after", p.issued.NotAfter, "expired_for", now.Sub(prevExpiry).Round(time.Millisecond))
	}
	a.publish()
	return nil
}

// notify runs the hook for the pair just written. A command's output is
// logged (an operator's `echo` shows, as in the README); a failure is
// logged and counted here, and returned for Once mode to report. A stop
// does not cut it short (its own timeout does): the files are already
// swapped, and an agent started again finds them valid and would not run
// it, leaving the proxy on the old certificate until the next renewal.
func (a *Agent) notify(ctx context.Context, p *issuedPair) error {
	out, err := a.hook.run(context.WithoutCancel(ctx), a.hookEnv(p.issued))
	if err == nil {
		if out = strings.TrimSpace(out); out != "" {
			a.log.Info("Hook ran", rotor.LogEvent, EventHookRan, "serial", p.issued.Serial, "output", out)
		}
		return nil
	}
	err = withCause("hook", fmt.Errorf("certificate %s is on disk, but %w", p.issued.Serial, err))
	a.metrics.failed(err)
	a.log.Error("Hook failed after the new certificate was written", "error", err)
	return err
}

// nextKey is the key for the next CSR: a new one, or with ReuseKey the
// current one if it is of the configured type.
func (a *Agent) nextKey() (crypto.Signer, error) {
	if a.cfg.ReuseKey && a.cur != nil {
		if kt, ok := rotor.KeyTypeOf(a.cur.key.Public()); ok && kt == a.cfg.KeyType {
			return a.cur.key, nil
		}
	}
	return rotor.GenerateKey(a.cfg.KeyType, nil)
}

// token reads the token: the file again each time, since projected
// service-account tokens are replaced while the agent runs.
func (a *Agent) token() (string, error) {
	if a.cfg.Token != "" {
		return a.cfg.Token, nil
	}
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return "", withCause("token", fmt.Errorf("read --token-file: %w", err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", withCause("token", fmt.Errorf("--token-file %s is empty", a.cfg.TokenFile))
	}
	return tok, nil
}

// hookEnv tells the hook what changed, by the visible names the layout
// gives the files. The token is never in it.
func (a *Agent) hookEnv(issued *client.Issued) []string {
	env := []string{
		"ROTOR_CERT_SERIAL=" + issued.Serial,
		"ROTOR_CERT_NOT_AFTER=" + issued.NotAfter.UTC().Format(time.RFC3339),
		"ROTOR_SPIFFE_ID=" + issued.SPIFFEID,
	}
	p := a.cfg.Layout.Paths(a.cfg.OutDir)
	env = append(env, "ROTOR_CERT_FILE="+p.Cert, "ROTOR_KEY_FILE="+p.Key, "ROTOR_BUNDLE_FILE="+p.Bundle)
	if p.Combined != "" {
		env = append(env, "ROTOR_COMBINED_FILE="+p.Combined)
	}
	return env
}
