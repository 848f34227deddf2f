package storecmd

import (
	"context"
	"crypto/x509"
	"io"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/store"
)

// errNotReady is `roots status` finding the root not yet everywhere: exit
// 3, so a script can wait with `until rotor-ca roots status …; do sleep 60;
// done`.
var errNotReady = notReady{}

type notReady struct{}

func (notReady) Error() string { return "not every live certificate went to a holder of the root" }
func (notReady) ExitCode() int { return 3 }

// runRootsStatus prints how many live identities hold a bundle containing
// a root: the cut-over signal of a root rotation.
func runRootsStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common           Flags
		rootFile, rootFP string
		show             int
	)
	f := NewFlagSet("roots status", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&rootFile, "root", "", "PEM file of the root to look for (the new root of a rotation)")
	f.StringVar(&rootFP, "root-fingerprint", "", "SHA-256 fingerprint of the root to look for, hex (colons and case ignored), instead of --root")
	f.IntVar(&show, "show", 20, "list at most this many identities that miss the root")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	if (rootFile == "") == (rootFP == "") {
		return cli.Usagef("give exactly one of --root and --root-fingerprint")
	}
	subject := ""
	if rootFile != "" {
		root, err := readRoot(rootFile)
		if err != nil {
			return err
		}
		rootFP, subject = rotor.Fingerprint(root.Raw), root.Subject.String()
	} else {
		fp, err := rotor.ParseFingerprint(rootFP)
		if err != nil {
			return cli.Usagef("--root-fingerprint: %s", rotor.ErrorMessageOf(err))
		}
		rootFP = fp
	}
	st, err := common.OpenStore(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	status, err := st.RootStatus(ctx, rootFP)
	if err != nil {
		return err
	}
	if err := status.WriteReport(stdout, subject, show); err != nil {
		return err
	}
	if !status.Complete() {
		return errNotReady
	}
	return nil
}

// readRoot reads the one CA certificate of a root file.
func readRoot(path string) (*x509.Certificate, error) {
	certs, err := issuer.ReadCertificates(path, "--root")
	if err == nil && (len(certs) != 1 || !certs[0].IsCA) {
		err = cli.Usagef("--root %s must hold one CA certificate, not %d certificates", path, len(certs))
	}
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
