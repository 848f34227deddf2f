package workloadapi

import "testing"

// TestPercentEncode: grpc-message carries printable ASCII as it is and
// every other byte, and '%', as %XX, so a client decodes the text sent.
func TestPercentEncode(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"method /a/b not implemented", "method /a/b not implemented"},
		{"100%", "100%25"},
		{"tab\there", "tab%09here"},
		{"é", "%C3%A9"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := percentEncode(tt.in); got != tt.want {
			t.Errorf("percentEncode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
