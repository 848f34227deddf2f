package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rotor-dev/rotor"
)

// FuzzDecodeIssueBody: whatever the body, the strict decoder either
// refuses it with EInvalid or returns a csr that encoding/json reads the
// same way, from an object with nothing but csr and ttl, each once.
func FuzzDecodeIssueBody(f *testing.F) {
	for _, s := range []string{`{"csr":"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"csr":"x","ttl":"1h"}`, `{"CSR":"x"}`, `{"csr":"a","csr":"b"}`, `{"csr":null}`, `[]`, `{"csr":"x"} {}`,
		`{"csr":"\u0000"}`, `{"csr":"x","ttl":1}`, `{`, `"csr"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decodeIssueBody(body)
		if err != nil {
			if rotor.ErrorCodeOf(err) != rotor.EInvalid {
				t.Fatalf("refused with %v, want invalid-request", err)
			}
			return
		}
		if in.CSR == "" {
			t.Fatal("accepted a body without a csr")
		}
		var loose map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&loose); err != nil {
			t.Fatalf("accepted what encoding/json cannot decode: %v", err)
		}
		for k := range loose {
			if k != "csr" && k != "ttl" {
				t.Fatalf("accepted field %q", k)
			}
		}
		if loose["csr"] != in.CSR || (in.TTL != "" && loose["ttl"] != in.TTL) {
			t.Fatalf("decoded %+v, encoding/json reads %v", in, loose)
		}
	})
}

// FuzzCSRDER: the PEM intake returns a CSR only from exactly one
// CERTIFICATE REQUEST block with nothing around it, and refuses anything
// else with EBadCSR; bytes that are not PEM pass through as DER only when
// DER is allowed.
func FuzzCSRDER(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"), true)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"), false)
	f.Add([]byte("\x30\x03\x02\x01\x00"), true)
	f.Add([]byte("junk\n-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\njunk"), false)
	f.Fuzz(func(t *testing.T, b []byte, allowDER bool) {
		der, err := csrDER(b, allowDER)
		if err != nil {
			if rotor.ErrorCodeOf(err) != rotor.EBadCSR {
				t.Fatalf("refused with %v, want bad-csr", err)
			}
			return
		}
		if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN ")) {
			if !allowDER || !bytes.Equal(der, b) {
				t.Fatalf("non-PEM input accepted (DER allowed %v) as %x", allowDER, der)
			}
			return
		}
		if bytes.Count(b, []byte("-----BEGIN ")) != 1 || !bytes.Contains(b, []byte("CERTIFICATE REQUEST-----")) {
			t.Fatalf("accepted PEM that is not exactly one CERTIFICATE REQUEST: %q", b)
		}
	})
}
