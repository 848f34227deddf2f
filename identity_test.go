package rotor_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
)

func TestIdentityNames(t *testing.T) {
	if got, want := webapp.DNSName("cluster.local"), "webapp.default.serviceaccount.identity.rotor.cluster.local"; got != want {
		t.Errorf("DNSName = %q, want %q", got, want)
	}
	if got, want := webapp.SPIFFEID("cluster.local").String(), "spiffe://cluster.local/ns/default/sa/webapp"; got != want {
		t.Errorf("SPIFFEID = %q, want %q", got, want)
	}
}

func TestIdentityFromSPIFFEID(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want rotor.Identity
		ok   bool
	}{
		{name: "ok/plain", uri: "spiffe://cluster.local/ns/default/sa/webapp", want: webapp, ok: true},
		{name: "fail/other-domain", uri: "spiffe://evil.local/ns/default/sa/webapp"},
		{name: "fail/extra-segment", uri: "spiffe://cluster.local/ns/default/sa/webapp/x"},
		{name: "fail/wrong-keys", uri: "spiffe://cluster.local/namespace/default/sa/webapp"},
		{name: "fail/upper-case", uri: "spiffe://cluster.local/ns/Default/sa/webapp"},
		{name: "fail/query", uri: "spiffe://cluster.local/ns/default/sa/webapp?x=1"},
		{name: "fail/https", uri: "https://cluster.local/ns/default/sa/webapp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rotor.IdentityFromSPIFFEID(u, "cluster.local")
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("identity = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdentityValidate(t *testing.T) {
	tests := []struct {
		id rotor.Identity
		ok bool
	}{
		{rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}, true},
		{rotor.Identity{Namespace: "kube-system", ServiceAccount: "a.b-c"}, true},
		{rotor.Identity{Namespace: "", ServiceAccount: "webapp"}, false},
		{rotor.Identity{Namespace: "a.b", ServiceAccount: "webapp"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "Web"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "-web"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "we/b"}, false},
		// Kubernetes refuses these, so Rotor does: an empty DNS label in a SAN.
		{rotor.Identity{Namespace: "default", ServiceAccount: "a..b"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "a.-b"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "a-.b"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: "a."}, false},
		{rotor.Identity{Namespace: strings.Repeat("n", 63), ServiceAccount: "webapp"}, true},
		{rotor.Identity{Namespace: strings.Repeat("n", 64), ServiceAccount: "webapp"}, false},
		{rotor.Identity{Namespace: "default", ServiceAccount: strings.Repeat("a.", 126) + "a"}, true},
		{rotor.Identity{Namespace: "default", ServiceAccount: strings.Repeat("a.", 126) + "ab"}, false},
	}
	for _, tt := range tests {
		if err := tt.id.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%v) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestProblemTypeRoundTrip(t *testing.T) {
	for _, c := range rotor.ErrorCodes {
		if got := rotor.CodeFromProblemType(c.ProblemType()); got != c {
			t.Errorf("CodeFromProblemType(%q) = %q", c.ProblemType(), got)
		}
	}
	for _, bad := range []string{"about:blank", "urn:rotor:problem:nope", "bad-csr"} {
		if got := rotor.CodeFromProblemType(bad); got != rotor.EInternal {
			t.Errorf("CodeFromProblemType(%q) = %q, want internal", bad, got)
		}
	}
}
