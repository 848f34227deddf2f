package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTokenFileReread: the token file is read again for every request, so
// a rotated projected token is picked up without a restart.
func TestTokenFileReread(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	a := &Agent{cfg: Config{TokenFile: path}}
	for _, tok := range []string{"rotor_first", "rotor_second"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := a.token()
		if err != nil || got != tok {
			t.Errorf("token() = %q, %v; want %q", got, err, tok)
		}
	}
	tests := []struct {
		name    string
		content *string
	}{
		{name: "fail/empty", content: new(string)},
		{name: "fail/missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "token")
			if tt.content != nil {
				if err := os.WriteFile(p, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := (&Agent{cfg: Config{TokenFile: p}}).token()
			if causeOf(err) != "token" {
				t.Errorf("token() error %v has cause %q, want token", err, causeOf(err))
			}
		})
	}
}
