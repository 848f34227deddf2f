package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
)

// contractDoc and contractRouter are loaded once in TestMain and only read
// afterwards, so parallel tests share them safely.
var (
	contractDoc    *openapi3.T
	contractRouter routers.Router
	contractBase   *url.URL
)

func TestMain(m *testing.M) {
	doc, err := openapi3.NewLoader().LoadFromData(rotor.OpenAPI)
	if err == nil {
		err = doc.Validate(context.Background())
	}
	if err != nil {
		panic("openapi.yaml: " + err.Error())
	}
	if contractRouter, err = gorillamux.NewRouter(doc); err != nil {
		panic("openapi.yaml router: " + err.Error())
	}
	contractDoc = doc
	contractBase, _ = url.Parse(doc.Servers[0].URL)
	// kin-openapi decodes bodies by media type. The bundle's PEM is text;
	// so is /openapi.yaml, whose schema says "string" while kin-openapi's
	// YAML decoder would parse the document into a map (openapi.yaml
	// should say format: binary there; reported, not edited here).
	openapi3filter.RegisterBodyDecoder("application/pem-certificate-chain", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
	os.Exit(m.Run())
}

// tlsServer serves h over real TLS configured by api.ServerTLSConfig, with a
// server certificate for "ca.rotor.test" from its own throwaway root.
type tlsServer struct {
	*httptest.Server
	roots *x509.CertPool
}

func startTLS(t testing.TB, h http.Handler) *tlsServer {
	t.Helper()
	cert, roots := serverCertificate(t)
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = api.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &tlsServer{Server: ts, roots: roots}
}

// serveTLS serves h with api.Serve, the server rotor-ca runs, with its
// phase timeouts, on a listener of its own.
func serveTLS(t testing.TB, h http.Handler, timeouts api.Timeouts) *tlsServer {
	t.Helper()
	cert, roots := serverCertificate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- api.Serve(ctx, api.ServeConfig{Listener: ln, Handler: h, Timeouts: timeouts, ShutdownTimeout: 5 * time.Second,
			Logger:         slog.New(slog.DiscardHandler),
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api.Serve: %v", err)
		}
	})
	return &tlsServer{Server: &httptest.Server{URL: "https://" + ln.Addr().String(), Listener: ln}, roots: roots}
}

// client returns an HTTP client that trusts the server and, when cert is
// not nil, presents it as its client certificate.
func (s *tlsServer) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: s.roots, ServerName: "ca.rotor.test", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2: false}}
}

// call is one request made through the contract checker.
type call struct {
	Method  string
	Path    string
	Header  http.Header
	Body    []byte
	Client  *http.Client // nil: the server's plain client
	Invalid bool         // the request itself breaks the contract, on purpose
	Hostile bool         // the request may or may not keep to the contract; only the answer is held to it
	Chunked bool         // send without Content-Length
}

// response is what came back, already checked against the contract.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem decodes a problem+json body.
func (r *response) problem(t testing.TB) rotor.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d: content type %q, want application/problem+json; body %s", r.Status, ct, r.Body)
	}
	var p rotor.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if p.Status != r.Status {
		t.Errorf("problem status %d, HTTP status %d", p.Status, r.Status)
	}
	return p
}

// do performs c against s over TLS and validates the request and the
// response with kin-openapi: a request marked Invalid must fail request
// validation (the contract refuses it too), every other must pass, and
// every response must match a documented status, media type and schema.
// Paths the contract does not know are answered with a Problem body, which
// is checked against the Problem schema.
func (s *tlsServer) do(t testing.TB, c call) *response {
	t.Helper()
	if c.Client == nil {
		c.Client = s.client(nil)
	}
	var body io.Reader = bytes.NewReader(c.Body)
	if c.Chunked {
		body = io.MultiReader(body) // hides the length from net/http
	}
	req, err := http.NewRequest(c.Method, s.URL+c.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.Method, c.Path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.Method, c.Path, err)
	}
	out := &response{Status: resp.StatusCode, Header: resp.Header, Body: got}
	validate(t, c, out)
	return out
}

func validate(t testing.TB, c call, out *response) {
	t.Helper()
	ctx := context.Background()
	// The contract names its own server; route by path alone.
	vreq, err := http.NewRequest(c.Method, contractBase.String()+c.Path, bytes.NewReader(c.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.Header {
		vreq.Header[k] = vs
	}
	route, params, err := contractRouter.FindRoute(vreq)
	if err != nil {
		if !c.Invalid && !c.Hostile {
			t.Fatalf("%s %s is not in openapi.yaml: %v", c.Method, c.Path, err)
		}
		checkProblemSchema(t, out)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case c.Hostile:
	case c.Invalid && err == nil:
		t.Errorf("%s %s: request was meant to break the contract but validates", c.Method, c.Path)
	case !c.Invalid && err != nil:
		t.Errorf("%s %s: request breaks the contract: %v", c.Method, c.Path, err)
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: out.Status,
		Header: out.Header, Options: opts}
	rin.SetBodyBytes(out.Body)
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		t.Errorf("%s %s: response %d breaks the contract: %v\nbody: %s", c.Method, c.Path, out.Status, err, out.Body)
	}
}

// checkProblemSchema holds a response to an undocumented route to the
// Problem schema.
func checkProblemSchema(t testing.TB, out *response) {
	t.Helper()
	var v any
	if err := json.Unmarshal(out.Body, &v); err != nil {
		t.Fatalf("status %d: body is not JSON: %v: %s", out.Status, err, out.Body)
	}
	schema := contractDoc.Components.Schemas["Problem"].Value
	if err := schema.VisitJSON(v); err != nil {
		t.Errorf("status %d: body is not a Problem: %v", out.Status, err)
	}
}
