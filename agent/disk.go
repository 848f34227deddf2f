package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// loadDisk adopts what an earlier run left in OutDir: the bundle, if it
// can be trusted, and the certificate, if it matches its key, chains to a
// trusted root and is still valid. A certificate of another key type is
// kept for authenticating the renewal but is due at once. The expiry of a
// pair it does not adopt is kept for EventExpired.
func (a *Agent) loadDisk() {
	f, version, err := client.ReadFiles(a.cfg.OutDir)
	if errors.Is(err, fs.ErrNotExist) {
		a.log.Info("No certificate on disk yet", "out_dir", a.cfg.OutDir)
		return
	}
	if err != nil {
		a.log.Warn("Cannot read the files on disk; issuing anew", "out_dir", a.cfg.OutDir, "error", err)
		return
	}
	if roots, err := rotor.ParseCertificates(f.Bundle); err == nil {
		if b, err := rotor.NewBundle(roots); err == nil && a.anchors(b) {
			a.setBundle(b)
		}
	}
	if a.ca == nil && a.pin == "" {
		a.setBundle(nil) // the bundle file alone
	}
	if a.ca == nil {
		a.log.Info("The bundle on disk does not hold the pinned root; issuing anew", "out_dir", a.cfg.OutDir)
		return
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		a.log.Warn("The certificate on disk does not load with its key; issuing anew", "error", err)
		return
	}
	leaf := pair.Leaf
	a.foundExpiry = leaf.NotAfter // what the workload has until a new pair is written
	if err := a.verifyOnDisk(&pair); err != nil {
		a.log.Info("The certificate on disk is expired or not from this CA; issuing anew", "serial", serialOf(leaf), "error", err)
		return
	}
	td, id, err := client.LeafIdentity(leaf)
	if err != nil {
		a.log.Info("The certificate on disk carries no Rotor identity; issuing anew", "error", err)
		return
	}
	key := pair.PrivateKey.(crypto.Signer) // every key tls parses is one
	issuedAt, ok := client.VersionTime(version)
	if !ok {
		issuedAt = leaf.NotBefore
	}
	a.cur = &current{cert: &pair, key: key, identity: id, trustDomain: td, issuedAt: issuedAt}
	a.relayout(f, issuedAt)
	if kt, _ := rotor.KeyTypeOf(key.Public()); kt != a.cfg.KeyType {
		a.log.Info("The key on disk is not of the configured type; renewing now", "on_disk", kt, "want", a.cfg.KeyType)
	} else {
		a.cur.renewAt = NextRenewal(leaf, issuedAt, time.Time{}, a.cfg.RenewBefore, a.rand())
	}
	a.metrics.cert.certificate(id, leaf, a.cur.renewAt)
	a.publish()
}

// verifyOnDisk checks a pair read from disk chains, now, to the trust.
func (a *Agent) verifyOnDisk(pair *tls.Certificate) error {
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: a.trustPool(), Intermediates: inter, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// relayout writes the adopted files again when they are not laid out as
// configured (an earlier run had other names, no combined file, another
// key mode or owner): the certificate may not be due for hours, and the
// proxy configured for the new layout needs its files now. The version
// keeps the issuance time. A failed write leaves the old layout, which
// still holds a valid pair: logged, and the next renewal writes anew.
func (a *Agent) relayout(f client.Files, issuedAt time.Time) {
	if a.cfg.Layout.InPlace(a.cfg.OutDir) {
		return
	}
	if err := a.cfg.Layout.Write(a.cfg.OutDir, f, issuedAt); err != nil {
		a.log.Warn("Cannot lay out the files on disk as configured; the next renewal will", "out_dir", a.cfg.OutDir, "error", err)
		return
	}
	a.log.Info("Laid out the certificate on disk as configured", "out_dir", a.cfg.OutDir)
}

// anchors reports whether a bundle found on disk belongs to the CA the
// configuration names: it holds the pinned root, or shares a root with the
// bundle file. Files left by an agent of another CA are not trusted, and
// neither is a certificate chaining to them.
func (a *Agent) anchors(b *rotor.Bundle) bool {
	if a.pin != "" {
		return b.Holds(a.pin)
	}
	for _, r := range b.Roots {
		for _, f := range a.fileRoots {
			if r.Equal(f) {
				return true
			}
		}
	}
	return false
}

// ensureCA makes first contact in pinned mode when nothing trusted is
// known yet; with a bundle file or a trusted bundle the client exists.
func (a *Agent) ensureCA(ctx context.Context) error {
	if a.ca != nil {
		return nil
	}
	if a.pin == "" { // a bundle file always gives a client; see setBundle
		a.setBundle(nil)
		return nil
	}
	b, err := client.FetchBundlePinned(ctx, a.clientConfig(nil), a.pin)
	if err != nil {
		return err
	}
	a.log.Info("First contact: the CA's bundle holds the pinned root", "bundle", b.Fingerprint, "roots", len(b.Roots))
	a.setBundle(b)
	return nil
}

// setBundle makes b the bundle to write and to trust, with the roots of
// the bundle file, and builds a client that trusts them.
func (a *Agent) setBundle(b *rotor.Bundle) {
	a.bundle = b
	c, err := client.New(a.clientConfig(a.trustPool()))
	if err != nil {
		panic("agent: client config checked by Validate: " + err.Error())
	}
	if a.ca != nil {
		a.ca.CloseIdleConnections()
	}
	a.ca = c
}

// trustPool holds the roots of the bundle file and of the current bundle.
func (a *Agent) trustPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, r := range a.fileRoots {
		pool.AddCert(r)
	}
	if a.bundle != nil {
		for _, r := range a.bundle.Roots {
			pool.AddCert(r)
		}
	}
	return pool
}

func (a *Agent) clientConfig(roots *x509.CertPool) client.Config {
	return client.Config{URL: a.cfg.CAURL, Roots: roots, Timeout: a.cfg.RequestTimeout, UserAgent: "rotor-agent"}
}

// keyPair assembles a tls.Certificate from parsed parts.
func keyPair(leaf *x509.Certificate, chain []*x509.Certificate, key crypto.Signer) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}
