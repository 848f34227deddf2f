package agent

import (
	"crypto/tls"

	"github.com/rotor-dev/rotor"
)

// Update is a certificate the agent has put in place, with the trust bundle
// beside it: what the workload holds from then on.
type Update struct {
	// Certificate is the leaf, then the issuing chain, with Leaf set and a
	// crypto.Signer as PrivateKey.
	Certificate *tls.Certificate
	TrustDomain string
	Identity    rotor.Identity
	// Bundle holds the roots written to bundle.pem: several during a root
	// rotation.
	Bundle *rotor.Bundle
}

// Subscriber hears of every certificate the agent puts in place: the one
// it adopts from disk at start, if any, and each new one after, with the
// bundle written beside it. A new bundle found by a poll makes the agent
// renew at once (bundleChanged), so it is published with the certificate
// that follows it, as it is written with it.
//
// Publish is called on the agent's goroutine, one Update at a time in the
// order they happened, after the files are on disk; it must not block, and
// must not modify the Update or what it points to.
type Subscriber interface {
	Publish(Update)
}

// publish tells cfg.Subscriber about the current certificate.
func (a *Agent) publish() {
	if a.cfg.Subscriber == nil || a.cur == nil {
		return
	}
	b := a.bundle
	if b == nil {
		// Adopted at start under --ca-bundle alone: the bundle on disk did
		// not share a root with it, so the file's roots are the trust.
		var err error
		if b, err = rotor.NewBundle(a.fileRoots); err != nil {
			a.log.Warn("No trust bundle to publish with the certificate", "error", err)
			return
		}
	}
	a.cfg.Subscriber.Publish(Update{Certificate: a.cur.cert, TrustDomain: a.cur.trustDomain,
		Identity: a.cur.identity, Bundle: b})
}
