package issuer

import (
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer"
)

// WriteSummary tells the operator what CreateCA made and the rotor-ca
// serve command that uses it, with the settings file and as flags.
// existingRoot is the root certificate file signed with, "" if the root is
// new; pinEnv names the variable a PKCS#11 PIN is read from.
func (c *Created) WriteSummary(w io.Writer, trustDomain, existingRoot, pinEnv string) error {
	rootNote := "created"
	if existingRoot != "" {
		rootNote = "existing, from " + existingRoot
	}
	dir := filepath.Dir(c.ConfFile)
	tail := []string{"--trust-bundle", c.BundleFile, "--trust-domain", trustDomain}
	lines := []string{
		fmt.Sprintf("# root (%s): sha256=%s subject=%q not_after=%s", rootNote, rotor.Fingerprint(c.Root.Raw),
			c.Root.Subject.String(), c.Root.NotAfter.UTC().Format(time.RFC3339)),
		fmt.Sprintf("# issuer (key in %s): key_id=%s subject=%q not_after=%s", c.Settings.Signer,
			hex.EncodeToString(c.Issuer.SubjectKeyId), c.Issuer.Subject.String(), c.Issuer.NotAfter.UTC().Format(time.RFC3339)),
		"# Serve it with (serve finds " + ConfigFile + " and " + BundleFile + " in its data directory, and re-reads them on SIGHUP and when they change):",
		shellJoin([]string{"rotor-ca", "serve", "--data-dir", dir, "--trust-domain", trustDomain}),
		"# or, naming the files, or with the same settings as flags:",
		shellJoin(append([]string{"rotor-ca", "serve", "--issuer-config", c.ConfFile}, tail...)),
		shellJoin(append(append([]string{"rotor-ca", "serve"}, c.Settings.Flags()...), tail...)),
	}
	if existingRoot == "" {
		rootKey := filepath.Join(dir, RootKeyFile)
		lines = append(lines, "# "+rootKey+" is the root's private key. Serving never needs it, and whoever holds it",
			"# can make an issuer every workload trusts: move it offline now (an encrypted USB key, a vault),",
			"# and bring it back only to sign the next issuer with rotor-ca init --root-cert "+filepath.Join(dir, RootCertFile)+" --root-key FILE.")
	}
	if c.Settings.Signer == signer.BackendPKCS11 && c.Settings.PKCS11PINFile == "" {
		lines = append(lines, "# with the token's PIN in "+pinEnv+" (or add --pkcs11-pin-file FILE)")
	}
	_, err := fmt.Fprintln(w, strings.Join(lines, "\n"))
	return err
}

// shellJoin quotes what a POSIX shell would split or expand.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
