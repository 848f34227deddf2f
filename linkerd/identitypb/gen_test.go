package identitypb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rotor-dev/rotor/internal/testenv"
)

// protocVersion is the header line naming protoc's version, which differs
// between machines while the code does not.
var protocVersion = regexp.MustCompile(`(?m)^// (\t| - )protoc +v.*$`)

// TestGeneratedCode: the committed Go files are what gen.sh makes from
// identity.proto with protoc and the plugins pinned in go.mod, so nobody
// edits them by hand or forgets to regenerate.
func TestGeneratedCode(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("protoc"); err != nil {
		testenv.Unavailable(t, "protoc", "apt-get install -y protobuf-compiler")
	}
	out := t.TempDir()
	if b, err := exec.Command("sh", "gen.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"identity.pb.go", "identity_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(protocVersion.ReplaceAll(got, nil), protocVersion.ReplaceAll(want, nil)) {
			t.Errorf("%s is not what gen.sh makes: run go generate ./linkerd/identitypb and commit the result", name)
		}
	}
}
