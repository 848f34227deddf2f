package api_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// kit is what hostile requests are made of: an env with a JWT issuer it
// trusts, and a good CSR.
type kit struct {
	e   *env
	jwt *testpki.ServiceAccountIssuer
	der []byte // a good P-256 CSR, DER
}

// hostile is one request an attacker or a broken client could send, and
// exactly what the CA must answer and record.
type hostile struct {
	name   string
	call   func(t testing.TB, k *kit) call
	status int
	code   rotor.ErrorCode
	rows   int  // refusal rows it adds: 1 for an issuance request, 0 for the rest
	authed bool // the row names the caller (webapp); else it names nobody
}

// hostilePost is an issuance request with the env's token unless header says
// otherwise.
func hostilePost(k *kit, contentType string, body []byte, header http.Header) call {
	h := header
	if h == nil {
		h = bearer(k.e.token)
	}
	h = h.Clone()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return call{Method: http.MethodPost, Path: "/v1/certificates", Header: h, Body: body, Hostile: true}
}

func postJSON(body string) func(testing.TB, *kit) call {
	return func(_ testing.TB, k *kit) call { return hostilePost(k, "application/json", []byte(body), nil) }
}

func postPEM(f func(pemCSR string) string) func(testing.TB, *kit) call {
	return func(_ testing.TB, k *kit) call {
		return hostilePost(k, "application/pkcs10", []byte(f(string(csrPEM(k.der)))), nil)
	}
}

// withToken sends a good CSR with a bearer token made by mint.
func withToken(mint func(t testing.TB, k *kit) string) func(testing.TB, *kit) call {
	return func(t testing.TB, k *kit) call {
		return hostilePost(k, "application/pkcs10", k.der, bearer(mint(t, k)))
	}
}

// withCert sends a good CSR over mTLS with the client certificate cert
// makes, and no token.
func withCert(cert func(t testing.TB, k *kit) tls.Certificate) func(testing.TB, *kit) call {
	return func(t testing.TB, k *kit) call {
		c := hostilePost(k, "application/pkcs10", k.der, http.Header{})
		crt := cert(t, k)
		c.Client = k.e.client(&crt)
		return c
	}
}

// claims edits the JWT issuer's claims for webapp.
func claims(edit func(map[string]any)) func(testing.TB, *kit) string {
	return func(t testing.TB, k *kit) string {
		c := k.jwt.Claims(webapp, "rotor", time.Now())
		edit(c)
		return k.jwt.Mint(t, c)
	}
}

// caLeaf is a client certificate the env's own issuer signed, from tmpl.
func caLeaf(tmpl func(*x509.Certificate)) func(testing.TB, *kit) tls.Certificate {
	return func(t testing.TB, k *kit) tls.Certificate {
		key := testpki.Key(t, "ecdsa-p256")
		c := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: webapp.DNSName(trustDomain)},
			DNSNames: []string{webapp.DNSName(trustDomain)}, URIs: []*url.URL{webapp.SPIFFEID(trustDomain)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
		tmpl(c)
		issuer := k.e.pki.Trust.Issuer.Certificate
		der, err := x509.CreateCertificate(rand.Reader, c, issuer, key.Public(), k.e.pki.IssuerKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der, issuer.Raw}, PrivateKey: key}
	}
}

// hostileCases go beyond the CSR policy table (policyCases): the request's
// framing, its headers, its JSON and PEM, its credentials, and routes.
func hostileCases() []hostile {
	const bad, unauth, forbidden = http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden
	csrJSON := func(pemCSR string) string { return `{"csr":` + jsonString(pemCSR) + `}` }
	withPEM := func(f func(k *kit) string) func(testing.TB, *kit) call {
		return func(_ testing.TB, k *kit) call { return hostilePost(k, "application/json", []byte(f(k)), nil) }
	}
	pemOf := func(k *kit) string { return string(csrPEM(k.der)) }
	return []hostile{
		// Headers, decided before or right after authentication.
		{"fail/two-authorization-headers", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der, http.Header{"Authorization": {"Bearer " + k.e.token, "Bearer " + k.e.token}})
		}, bad, rotor.EInvalid, 1, false},
		{"fail/two-authorization-headers-one-bad", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der, http.Header{"Authorization": {"Bearer rotor_nope", "Bearer " + k.e.token}})
		}, bad, rotor.EInvalid, 1, false},
		{"fail/basic-auth", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der, http.Header{"Authorization": {"Basic d2ViYXBwOnB3"}})
		}, unauth, rotor.EUnauthenticated, 1, false},
		{"fail/empty-bearer", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der, http.Header{"Authorization": {"Bearer "}})
		}, unauth, rotor.EUnauthenticated, 1, false},
		{"fail/token-with-garbage", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der, bearer(k.e.token+"x"))
		}, unauth, rotor.EUnauthenticated, 1, false},
		{"fail/no-content-type", func(_ testing.TB, k *kit) call { return hostilePost(k, "", k.der, nil) },
			http.StatusUnsupportedMediaType, rotor.EUnsupportedMedia, 1, true},
		{"fail/two-content-types", func(_ testing.TB, k *kit) call {
			c := hostilePost(k, "application/pkcs10", k.der, nil)
			c.Header.Add("Content-Type", "application/json")
			return c
		}, http.StatusUnsupportedMediaType, rotor.EUnsupportedMedia, 1, true},
		{"fail/form-content-type", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/x-www-form-urlencoded", []byte("csr=x"), nil)
		}, http.StatusUnsupportedMediaType, rotor.EUnsupportedMedia, 1, true},
		{"fail/two-fingerprints", func(_ testing.TB, k *kit) call {
			c := hostilePost(k, "application/pkcs10", k.der, nil)
			fp := k.e.pki.Trust.Bundle.Fingerprint
			c.Header[rotor.HeaderBundleFingerprint] = []string{fp, fp}
			return c
		}, bad, rotor.EInvalid, 1, true},
		{"fail/fingerprint-not-hex", func(_ testing.TB, k *kit) call {
			c := hostilePost(k, "application/pkcs10", k.der, nil)
			c.Header.Set(rotor.HeaderBundleFingerprint, strings.Repeat("g", 64))
			return c
		}, bad, rotor.EInvalid, 1, true},
		// JSON, decoded strictly.
		{"fail/json-not-an-object", postJSON(`["csr"]`), bad, rotor.EInvalid, 1, true},
		{"fail/json-key-case", withPEM(func(k *kit) string { return `{"CSR":` + jsonString(pemOf(k)) + `}` }), bad, rotor.EInvalid, 1, true},
		{"fail/json-duplicate-key", withPEM(func(k *kit) string {
			return `{"csr":` + jsonString(pemOf(k)) + `,"csr":` + jsonString(pemOf(k)) + `}`
		}), bad, rotor.EInvalid, 1, true},
		{"fail/json-unknown-field", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"sans":["x"]}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-csr-null", postJSON(`{"csr":null}`), bad, rotor.EInvalid, 1, true},
		{"fail/json-csr-empty", postJSON(`{"csr":""}`), bad, rotor.EInvalid, 1, true},
		{"fail/json-csr-number", postJSON(`{"csr":42}`), bad, rotor.EInvalid, 1, true},
		{"fail/json-csr-object", postJSON(`{"csr":{"pem":"x"}}`), bad, rotor.EInvalid, 1, true},
		{"fail/json-no-csr", postJSON(`{"ttl":"1h"}`), bad, rotor.EInvalid, 1, true},
		{"fail/json-ttl-number", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"ttl":3600}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-ttl-garbage", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"ttl":"soon"}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-ttl-negative", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"ttl":"-1h"}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-ttl-zero", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"ttl":"0s"}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-ttl-below-minimum", withPEM(func(k *kit) string { return `{"csr":` + jsonString(pemOf(k)) + `,"ttl":"500ms"}` }),
			bad, rotor.EInvalid, 1, true},
		{"fail/json-two-values", withPEM(func(k *kit) string { return csrJSON(pemOf(k)) + ` {}` }), bad, rotor.EInvalid, 1, true},
		{"fail/json-trailing-garbage", withPEM(func(k *kit) string { return csrJSON(pemOf(k)) + `x` }), bad, rotor.EInvalid, 1, true},
		{"fail/json-truncated", withPEM(func(k *kit) string { return csrJSON(pemOf(k))[:40] }), bad, rotor.EInvalid, 1, true},
		{"fail/json-csr-der-base64", withPEM(func(k *kit) string {
			return `{"csr":` + jsonString(base64.StdEncoding.EncodeToString(k.der)) + `}`
		}), bad, rotor.EBadCSR, 1, true},
		// PEM: exactly one CERTIFICATE REQUEST block, nothing around it.
		{"fail/pem-relabelled-private-key", postPEM(func(p string) string {
			return strings.ReplaceAll(p, "CERTIFICATE REQUEST", "PRIVATE KEY")
		}), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-relabelled-certificate", postPEM(func(p string) string {
			return strings.ReplaceAll(p, "CERTIFICATE REQUEST", "CERTIFICATE")
		}), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-text-after", postPEM(func(p string) string { return p + "trailing words\n" }), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-two-blocks", postPEM(func(p string) string { return p + p }), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-headers", postPEM(func(p string) string {
			return strings.Replace(p, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)
		}), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-truncated", postPEM(func(p string) string { return p[:len(p)/2] }), bad, rotor.EBadCSR, 1, true},
		{"fail/pem-in-json-text-before", withPEM(func(k *kit) string { return csrJSON("hello\n" + pemOf(k)) }), bad, rotor.EBadCSR, 1, true},
		{"fail/der-truncated", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", k.der[:len(k.der)/2], nil)
		},
			bad, rotor.EBadCSR, 1, true},
		{"fail/der-trailing-bytes", func(_ testing.TB, k *kit) call {
			return hostilePost(k, "application/pkcs10", append(bytes.Clone(k.der), 0, 0), nil)
		}, bad, rotor.EBadCSR, 1, true},
		// Keys and names the CSR policy refuses, past those in policyCases.
		{"fail/ecdsa-p521", csrOf("ecdsa-p521", nil), bad, rotor.EBadCSR, 1, true},
		{"fail/wildcard-san", csrOf("", &x509.CertificateRequest{DNSNames: []string{"*." + trustDomain}}), forbidden, rotor.EForbidden, 1, true},
		{"fail/own-and-other-san", csrOf("", &x509.CertificateRequest{
			DNSNames: []string{webapp.DNSName(trustDomain), otherID.DNSName(trustDomain)}}), forbidden, rotor.EForbidden, 1, true},
		{"fail/uri-other-trust-domain", csrOf("", &x509.CertificateRequest{URIs: []*url.URL{webapp.SPIFFEID("evil.example")}}),
			forbidden, rotor.EForbidden, 1, true},
		{"fail/uri-other-identity", csrOf("", &x509.CertificateRequest{URIs: []*url.URL{otherID.SPIFFEID(trustDomain)}}),
			forbidden, rotor.EForbidden, 1, true},
		// Client certificates that must not authenticate.
		{"fail/foreign-client-cert", withCert(func(t testing.TB, _ *kit) tls.Certificate { return foreignLeaf(t, webapp) }),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/expired-client-cert", withCert(caLeaf(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		})), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/client-cert-without-spiffe-id", withCert(caLeaf(func(c *x509.Certificate) { c.URIs = nil })),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/client-cert-of-other-trust-domain", withCert(caLeaf(func(c *x509.Certificate) {
			c.URIs = []*url.URL{webapp.SPIFFEID("evil.example")}
		})), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/client-cert-server-only", withCert(caLeaf(func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		})), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/ca-cert-as-client-cert", withCert(func(_ testing.TB, k *kit) tls.Certificate {
			return tls.Certificate{Certificate: [][]byte{k.e.pki.Trust.Issuer.Certificate.Raw}, PrivateKey: k.e.pki.IssuerKey}
		}), unauth, rotor.EUnauthenticated, 1, false},
		// Service-account JWTs that must not authenticate.
		{"fail/jwt-alg-none", withToken(func(t testing.TB, k *kit) string {
			return k.jwt.Unsigned(t, k.jwt.Claims(webapp, "rotor", time.Now()))
		}), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-hmac-with-public-key", withToken(func(t testing.TB, k *kit) string {
			return k.jwt.MintWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: k.jwt.PublicKeyBytes()}, k.jwt.Claims(webapp, "rotor", time.Now()))
		}), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-forged-key", withToken(func(t testing.TB, k *kit) string {
			return k.jwt.MintWith(t, jose.SigningKey{Algorithm: jose.ES256, Key: testpki.Key(t, "ecdsa-p256")}, k.jwt.Claims(webapp, "rotor", time.Now()))
		}), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-expired", withToken(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-no-expiry", withToken(claims(func(c map[string]any) { delete(c, "exp") })), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-other-audience", withToken(claims(func(c map[string]any) { c["aud"] = []string{"vault"} })),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-other-issuer", withToken(claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-sub-mismatch", withToken(claims(func(c map[string]any) { c["sub"] = "system:serviceaccount:default:admin" })),
			unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-name-kubernetes-refuses", withToken(claims(func(c map[string]any) {
			c["sub"] = "system:serviceaccount:default:a..b"
			c["kubernetes.io"].(map[string]any)["serviceaccount"] = map[string]any{"name": "a..b", "uid": "u"}
		})), unauth, rotor.EUnauthenticated, 1, false},
		{"fail/jwt-truncated", withToken(func(t testing.TB, k *kit) string {
			tok := k.jwt.Mint(t, k.jwt.Claims(webapp, "rotor", time.Now()))
			return tok[:len(tok)-10]
		}), unauth, rotor.EUnauthenticated, 1, false},
		// Other routes: refused without an issuance refusal row.
		{"fail/delete-bundle", func(testing.TB, *kit) call {
			return call{Method: http.MethodDelete, Path: "/v1/bundle", Hostile: true}
		}, http.StatusMethodNotAllowed, rotor.EMethodNotAllowed, 0, false},
		{"fail/list-certificates-unauthenticated", func(testing.TB, *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates"}
		}, http.StatusUnauthorized, rotor.EUnauthenticated, 1, false},
		{"fail/list-certificates-as-workload", func(_ testing.TB, k *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates", Header: bearer(k.e.token)}
		}, http.StatusForbidden, rotor.EForbidden, 1, true},
		{"fail/list-certificates-bad-limit", adminGet("/v1/certificates?limit=0", true), bad, rotor.EInvalid, 1, false},
		{"fail/list-certificates-unknown-parameter", adminGet("/v1/certificates?serial=ab", false), bad, rotor.EInvalid, 1, false},
		{"fail/list-certificates-repeated-parameter", adminGet("/v1/certificates?limit=1&limit=2", false), bad, rotor.EInvalid, 1, false},
		{"fail/list-certificates-forged-cursor", adminGet("/v1/certificates?cursor=djEuLTE", false), bad, rotor.EInvalid, 1, false},
		{"fail/list-certificates-identity-and-namespace", adminGet("/v1/certificates?identity=a/b&namespace=a", false), bad, rotor.EInvalid, 1, false},
		{"fail/get-certificate-unauthenticated", func(testing.TB, *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates/" + strings.Repeat("ab", 20)}
		}, http.StatusUnauthorized, rotor.EUnauthenticated, 1, false},
		{"fail/serial-not-hex", func(_ testing.TB, k *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates/xyz", Header: bearer(k.e.token), Hostile: true}
		}, bad, rotor.EInvalid, 1, true},
		{"fail/serial-too-long", func(_ testing.TB, k *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates/" + strings.Repeat("a", 41), Header: bearer(k.e.token), Hostile: true}
		}, bad, rotor.EInvalid, 1, true},
		{"fail/unknown-serial-as-workload", func(_ testing.TB, k *kit) call {
			return call{Method: http.MethodGet, Path: "/v1/certificates/" + strings.Repeat("AB", 20), Header: bearer(k.e.token)}
		}, http.StatusForbidden, rotor.EForbidden, 1, true},
		{"fail/unknown-serial-as-admin", adminGet("/v1/certificates/"+strings.Repeat("AB", 20), false), http.StatusNotFound, rotor.ENotFound, 1, false},
		{"fail/deny-unauthenticated", func(testing.TB, *kit) call {
			return call{Method: http.MethodPost, Path: "/v1/identities/shop/web/deny", Body: []byte(`{"reason":"x"}`),
				Header: http.Header{"Content-Type": {"application/json"}}}
		}, http.StatusUnauthorized, rotor.EUnauthenticated, 1, false},
		{"fail/deny-as-workload", func(_ testing.TB, k *kit) call {
			h := bearer(k.e.token)
			h.Set("Content-Type", "application/json")
			return call{Method: http.MethodPost, Path: "/v1/identities/shop/web/deny", Body: []byte(`{"reason":"x"}`), Header: h}
		}, http.StatusForbidden, rotor.EForbidden, 1, true},
		{"fail/deny-no-reason", adminPost("/v1/identities/shop/web/deny", "application/json", `{"revoke_certificates": true}`, true),
			bad, rotor.EInvalid, 1, false},
		{"fail/deny-unknown-field", adminPost("/v1/identities/shop/web/deny", "application/json", `{"reason": "x", "revoke": true}`, true),
			bad, rotor.EInvalid, 1, false},
		{"fail/deny-revoke-not-boolean", adminPost("/v1/identities/shop/web/deny", "application/json", `{"reason": "x", "revoke_certificates": "yes"}`, true),
			bad, rotor.EInvalid, 1, false},
		{"fail/deny-bad-identity", adminPost("/v1/identities/Shop_1/web/deny", "application/json", `{"reason": "x"}`, true),
			bad, rotor.EInvalid, 1, false},
		{"fail/deny-not-json", adminPost("/v1/identities/shop/web/deny", "text/plain", `reason=x`, true),
			http.StatusUnsupportedMediaType, rotor.EUnsupportedMedia, 1, false},
		{"fail/allow-not-denied", adminPost("/v1/identities/shop/never-denied/allow", "application/json", `{"reason": "x"}`, false),
			http.StatusNotFound, rotor.ENotFound, 1, false},
		{"fail/revoke-unknown-serial", adminPost("/v1/certificates/"+strings.Repeat("ab", 20)+"/revoke", "application/json", `{"reason": "keyCompromise"}`, false),
			http.StatusNotFound, rotor.ENotFound, 1, false},
		{"fail/revoke-unknown-reason", adminPost("/v1/certificates/"+strings.Repeat("ab", 20)+"/revoke", "application/json", `{"reason": "stolen"}`, true),
			bad, rotor.EInvalid, 1, false},
		{"fail/revoke-as-workload", func(_ testing.TB, k *kit) call {
			h := bearer(k.e.token)
			h.Set("Content-Type", "application/json")
			return call{Method: http.MethodPost, Path: "/v1/certificates/" + strings.Repeat("ab", 20) + "/revoke",
				Body: []byte(`{"reason":"keyCompromise"}`), Header: h}
		}, http.StatusForbidden, rotor.EForbidden, 1, true},
		{"fail/unknown-path", func(testing.TB, *kit) call {
			return call{Method: http.MethodPost, Path: "/v1/certificate", Hostile: true}
		}, http.StatusNotFound, rotor.ENotFound, 0, false},
	}
}

// adminGet is a GET with the env's admin token; hostile if it breaks the
// contract.
func adminGet(path string, hostile bool) func(testing.TB, *kit) call {
	return func(_ testing.TB, k *kit) call {
		return call{Method: http.MethodGet, Path: path, Header: bearer(k.e.admin), Hostile: hostile}
	}
}

// adminPost is a POST with the env's admin token; hostile if it breaks the
// contract.
func adminPost(path, contentType, body string, hostile bool) func(testing.TB, *kit) call {
	return func(_ testing.TB, k *kit) call {
		h := bearer(k.e.admin)
		h.Set("Content-Type", contentType)
		return call{Method: http.MethodPost, Path: path, Header: h, Body: []byte(body), Hostile: hostile}
	}
}

// csrOf sends a CSR for a new key of kind ("" for P-256) from tmpl.
func csrOf(kind string, tmpl *x509.CertificateRequest) func(testing.TB, *kit) call {
	return func(t testing.TB, k *kit) call {
		if kind == "" {
			kind = "ecdsa-p256"
		}
		return hostilePost(k, "application/pkcs10", testpki.CSR(t, testpki.Key(t, kind), tmpl), nil)
	}
}

// policyAsHostile turns the CSR policy table's refusals into hostile
// requests, so one suite holds every refusal the API makes.
func policyAsHostile() []hostile {
	var out []hostile
	for _, c := range policyCases() {
		if c.code == "" {
			continue
		}
		out = append(out, hostile{name: c.name, status: c.status, code: c.code, rows: 1,
			authed: c.code != rotor.EUnauthenticated,
			call: func(t testing.TB, k *kit) call {
				if c.key == "" {
					c.key = "ecdsa-p256"
				}
				var tmpl *x509.CertificateRequest
				if c.tmpl != nil {
					tmpl = c.tmpl()
				}
				der := testpki.CSR(t, testpki.Key(t, c.key), tmpl)
				ct, body := "application/json", jsonBody(t, der, "")
				if c.body != nil {
					ct, body = c.body(t, der)
				}
				cl := hostilePost(k, ct, body, c.auth)
				cl.Chunked = c.chunked
				return cl
			}})
	}
	return out
}

// TestHostileRequests sends every hostile request to the live server on
// each real store, one at a time, and holds each answer to its status and
// problem type, no certificate in it, no issuance row, and exactly the
// refusal rows described: one per issuance request, naming the caller when
// it authenticated. The refusal budget is off here, so each refusal is its
// own row (TestRefusalFlood covers the budget).
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	cases := append(policyAsHostile(), hostileCases()...)
	if len(cases) < 60 {
		t.Fatalf("only %d hostile requests", len(cases))
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			storeURL := b.url(t)
			jwt := testpki.NewServiceAccountIssuer(t)
			k := &kit{e: newEnv(t, storeURL, envConfig{jwt: jwt}), jwt: jwt}
			k.der = testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { runHostile(t, k, storeURL, c) })
			}
			if n := countRows(t, storeURL, "SELECT count(*) FROM issuances"); n != 0 {
				t.Errorf("%d certificates issued to hostile requests", n)
			}
			t.Logf("%d hostile requests, each refused and recorded as described", len(cases))
		})
	}
}

func runHostile(t *testing.T, k *kit, storeURL string, c hostile) {
	lastID := countRows(t, storeURL, "SELECT coalesce(max(id), 0) FROM refusals")
	r := k.e.do(t, c.call(t, k))
	if r.Status != c.status {
		t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
	}
	if p := r.problem(t); rotor.CodeFromProblemType(p.Type) != c.code {
		t.Errorf("problem type %s, want code %s", p.Type, c.code)
	}
	if bytes.Contains(r.Body, []byte("BEGIN CERTIFICATE")) || bytes.Contains(r.Body, []byte(`"certificate"`)) {
		t.Errorf("a refusal carries a certificate: %s", r.Body)
	}
	ns := ""
	if c.authed {
		ns = webapp.Namespace
	}
	q := fmt.Sprintf("SELECT count(*) FROM refusals WHERE id > %d", lastID)
	want := fmt.Sprintf(q+" AND reason = '%s' AND namespace = '%s'", c.code, ns)
	if got, exact := countRows(t, storeURL, q), countRows(t, storeURL, want); got != c.rows || exact != c.rows {
		t.Errorf("%d refusal rows (%d with reason %s and namespace %q), want %d", got, exact, c.code, ns, c.rows)
	}
}
