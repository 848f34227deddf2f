package rotor

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
