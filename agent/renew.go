package agent

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// renew makes one attempt: refresh the bundle, make a key and CSR, get a
// certificate, write the three files together, run the hook. Nothing on
// disk changes unless the attempt has a complete, verified set to write.
func (a *Agent) renew(ctx context.Context) error {
	if err := a.ensureCA(ctx); err != nil {
		return err
	}
	b, err := a.ca.Bundle(ctx, a.bundle)
	if err != nil {
		return err
	}
	if b != a.bundle {
		if a.bundle != nil {
			a.log.Info("Trust bundle changed", "old", a.bundle.Fingerprint, "new", b.Fingerprint, "roots", len(b.Roots))
		}
		a.setBundle(b)
	}
	key, err := a.nextKey()
	if err != nil {
		return withCause("key", err)
	}
	csr, err := client.NewCSR(key)
	if err != nil {
		return err
	}
	req := client.IssueRequest{CSR: csr, TTL: a.cfg.TTL, BundleFingerprint: a.bundle.Fingerprint}
	// Renew with the current certificate while it is valid (it proves
	// the same identity without the token's exposure); fall back to the
	// token once it has expired or the CA refused it. The margin covers
	// the round trip: a twentieth of the lifetime, at most a second.
	if a.cur != nil && !a.mtlsRefused && a.now().Add(min(a.lifetime()/20, time.Second)).Before(a.cur.cert.Leaf.NotAfter) {
		req.ClientCertificate = a.cur.cert
	} else if req.Token, err = a.token(); err != nil {
		return err
	}
	issued, err := a.ca.Issue(ctx, req)
	if err != nil {
		if req.ClientCertificate != nil && rotor.ErrorCodeOf(err) == rotor.EUnauthenticated {
			a.mtlsRefused = true
		}
		return err
	}
	a.mtlsRefused = false
	return a.install(ctx, issued, key)
}

// install writes an issued certificate with its key and the bundle, then
// makes it current and tells the workload.
func (a *Agent) install(ctx context.Context, issued *client.Issued, key crypto.Signer) error {
	inter := x509.NewCertPool()
	for _, c := range issued.Chain {
		inter.AddCert(c)
	}
	now := a.now()
	if _, err := issued.Leaf.Verify(x509.VerifyOptions{Roots: a.bundle.Pool(), Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return withCause("verify", fmt.Errorf("issued certificate %s does not chain to the trust bundle: %w", issued.Serial, err))
	}
	_, id, err := client.LeafIdentity(issued.Leaf)
	if err != nil {
		return withCause("verify", err)
	}
	keyPEM, err := rotor.EncodePrivateKeyPEM(key)
	if err != nil {
		return withCause("key", err)
	}
	files := client.Files{Cert: issued.PEM, Key: keyPEM, Bundle: a.bundle.PEM}
	if err := client.WriteFiles(a.cfg.OutDir, files, now); err != nil {
		return withCause("write", err)
	}
	if a.cur != nil && a.cur.identity != id {
		a.log.Warn("Identity changed", "old", a.cur.identity.String(), "new", id.String())
	}
	a.cur = &current{cert: keyPair(issued.Leaf, issued.Chain, key), key: key, identity: id, issuedAt: now}
	a.cur.renewAt = NextRenewal(issued.Leaf, now, issued.RenewAfter, a.cfg.RenewBefore, a.rand())
	a.metrics.renewals.Inc()
	a.metrics.expiry.Set(float64(issued.NotAfter.Unix()))
	a.metrics.renewAt.Set(float64(a.cur.renewAt.Unix()))
	a.log.Info("Certificate will expire in "+issued.NotAfter.Sub(now).Round(time.Second).String(),
		rotor.LogEvent, EventWritten, "identity", id.String(), "serial", issued.Serial, "not_after", issued.NotAfter,
		"renew_at", a.cur.renewAt, "out_dir", a.cfg.OutDir)
	if err := a.hook.run(ctx, a.hookEnv(issued)); err != nil {
		a.metrics.failed(withCause("hook", err))
		a.log.Error("Hook failed after the new certificate was written", "error", err)
	}
	return nil
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

// hookEnv tells the hook what changed. The token is never in it.
func (a *Agent) hookEnv(issued *client.Issued) []string {
	dir := a.cfg.OutDir
	return []string{
		"ROTOR_CERT_SERIAL=" + issued.Serial,
		"ROTOR_CERT_NOT_AFTER=" + issued.NotAfter.UTC().Format(time.RFC3339),
		"ROTOR_CERT_FILE=" + filepath.Join(dir, client.CertFile),
		"ROTOR_KEY_FILE=" + filepath.Join(dir, client.KeyFile),
		"ROTOR_BUNDLE_FILE=" + filepath.Join(dir, client.BundleFile),
		"ROTOR_SPIFFE_ID=" + issued.SPIFFEID,
	}
}
