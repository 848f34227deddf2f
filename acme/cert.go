package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor/internal/httpjson"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor"
)

// certificate handles POST-as-GET /acme/cert/{serial}: the leaf and the
// issuing chain as application/pem-certificate-chain, for the account
// that ordered it.
func (s *server) certificate(w http.ResponseWriter, r *http.Request) {
	_, caller, ok := s.accountRequest(w, r)
	if !ok {
		return
	}
	// Checked before the store is asked: a path that is no serial is as
	// unknown as a serial nobody was given.
	serial := strings.ToLower(chi.URLParam(r, "serial"))
	var st *rotor.CertificateStatus
	var err error = rotor.Errorf(rotor.ENotFound, "not a serial")
	if rotor.IsLowerHex(serial, 1, rotor.MaxSerialHex) {
		st, err = s.store.CertificateStatus(r.Context(), serial)
	}
	if err == nil && st.Issuance.TokenSubject != caller.Subject || rotor.ErrorCodeOf(err) == rotor.ENotFound {
		err = &problem{Type: typeMalformed, Status: http.StatusNotFound, Detail: "this account has no such certificate"}
	}
	if err != nil {
		s.refuse(w, r, caller, err)
		return
	}
	w.Header().Set("Content-Type", rotor.MediaPEMChain)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: st.Issuance.Certificate})
	// The chain of an issuer since rotated away is not kept; holders have
	// the bundle, which still holds its root.
	if iss := s.cfg.Trust.Trust().Issuer; iss.KeyID == st.Issuance.IssuerKeyID {
		_, _ = w.Write(iss.ChainPEM)
	}
}

// revokeCert handles POST /acme/revoke-cert (RFC 8555 7.6), signed by an
// account of the certificate's identity (kid) or by the certificate's own
// key (jwk); the revocation is the admin API's.
func (s *server) revokeCert(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(w, r, true, true)
	var caller rotor.Caller
	if err == nil && req.jwk == nil {
		if caller, err = s.acme.Caller(r.Context(), r.RemoteAddr, req.acct); err != nil {
			s.write(w, r, err)
			return
		}
	}
	var body struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err == nil {
		err = decode(req, &body)
	}
	var st *rotor.CertificateStatus
	if err == nil {
		st, err = s.revocable(r, body.Certificate, req.jwk)
	}
	reason := rotor.ReasonUnspecified
	if err == nil && body.Reason != nil {
		if reason = rotor.RevocationReason(*body.Reason); !reason.Valid() {
			err = &problem{Type: typeBadRevocationReason, Status: http.StatusBadRequest, Detail: "reason " + strconv.Itoa(*body.Reason) + " is not an RFC 5280 reason"}
		}
	}
	if err != nil {
		s.refuse(w, r, caller, err)
		return
	}
	if err := s.acme.Revoke(r.Context(), r.RemoteAddr, caller, st, req.jwk != nil, reason); err != nil {
		s.writeAs(w, r, err, map[rotor.ErrorCode]string{rotor.EConflict: typeAlreadyRevoked})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// revocable is the status of the certificate to revoke: one this CA
// issued, byte for byte, whose key is jwk if the request is signed so.
func (s *server) revocable(r *http.Request, b64 string, jwk *jose.JSONWebKey) (*rotor.CertificateStatus, error) {
	der, err := base64.RawURLEncoding.DecodeString(b64)
	var cert *x509.Certificate
	if err == nil {
		cert, err = x509.ParseCertificate(der)
	}
	if err != nil {
		return nil, malformed("certificate is not base64url DER")
	}
	st, err := s.store.CertificateStatus(r.Context(), hex.EncodeToString(cert.SerialNumber.Bytes()))
	if err == nil && !bytes.Equal(st.Issuance.Certificate, der) || rotor.ErrorCodeOf(err) == rotor.ENotFound {
		return nil, &problem{Type: typeMalformed, Status: http.StatusNotFound, Detail: "this CA did not issue that certificate"}
	}
	if err != nil {
		return nil, err
	}
	if jwk != nil {
		certKey := jose.JSONWebKey{Key: cert.PublicKey}
		a, errA := thumbprint(&certKey)
		b, errB := thumbprint(jwk)
		if errA != nil || errB != nil || a != b {
			return nil, unauthorized("the request is signed neither by an account nor by the certificate's key")
		}
	}
	return st, nil
}

// renewalInfo handles GET /acme/renewal-info/{certID} (RFC 9773): the
// window from rotor.SuggestRenewal, as GET /v1/renewal-info answers it,
// with Retry-After. Like that endpoint it is public and records nothing.
func (s *server) renewalInfo(w http.ResponseWriter, r *http.Request) {
	aki, serial, err := parseCertID(chi.URLParam(r, "id"))
	var st *rotor.CertificateStatus
	if err == nil {
		st, err = s.store.CertificateStatus(r.Context(), serial)
	}
	if err == nil && st.Issuance.IssuerKeyID != "" && st.Issuance.IssuerKeyID != hex.EncodeToString(aki) ||
		rotor.ErrorCodeOf(err) == rotor.ENotFound {
		err = &problem{Type: typeMalformed, Status: http.StatusNotFound, Detail: "this CA issued no certificate of that ID"}
	}
	if err != nil {
		s.write(w, r, err)
		return
	}
	advice := rotor.SuggestRenewal(st, s.cfg.Trust.Trust().Issuer.KeyID, s.cfg.Now(), s.cfg.RenewalInfoRetryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(int(advice.RetryAfter.Seconds())))
	httpjson.Write(w, http.StatusOK, rotor.RenewalInfo{SuggestedWindow: advice.Window})
}

// parseCertID reads an RFC 9773 certificate ID, base64url(authority key
// identifier) "." base64url(serial DER INTEGER content), into the key
// identifier and the serial as Rotor writes it (lowercase hex).
func parseCertID(id string) ([]byte, string, error) {
	a, b, ok := strings.Cut(id, ".")
	aki, errA := base64.RawURLEncoding.DecodeString(a)
	raw, errB := base64.RawURLEncoding.DecodeString(b)
	if !ok || errA != nil || errB != nil || len(aki) == 0 || len(raw) == 0 || len(raw) > 21 || raw[0]&0x80 != 0 {
		return nil, "", malformed("certificate ID " + id + " is not base64url(AKI).base64url(serial)")
	}
	return aki, hex.EncodeToString(new(big.Int).SetBytes(raw).Bytes()), nil
}
