package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/store"
)

// errNotReady is `roots status` finding the root not yet everywhere: exit
// 3, so a script can wait with `until rotor-ca roots status …; do sleep 60;
// done`.
var errNotReady = errors.New("not every live certificate went to a holder of the root")

// runRootsStatus prints how many live identities hold a bundle containing
// a root: the cut-over signal of a root rotation.
func runRootsStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common           commonFlags
		rootFile, rootFP string
		show             int
	)
	fs := newFlagSet("roots status", stderr)
	common.register(fs)
	fs.StringVar(&rootFile, "root", "", "PEM file of the root to look for (the new root of a rotation)")
	fs.StringVar(&rootFP, "root-fingerprint", "", "SHA-256 fingerprint of the root to look for, hex (colons and case ignored), instead of --root")
	fs.IntVar(&show, "show", 20, "list at most this many identities that miss the root")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (rootFile == "") == (rootFP == "") {
		return fmt.Errorf("%w: give exactly one of --root and --root-fingerprint", errUsage)
	}
	if err := common.resolve(); err != nil {
		return err
	}
	subject := ""
	if rootFile != "" {
		root, err := readRoot(rootFile)
		if err != nil {
			return err
		}
		rootFP, subject = store.RootFingerprint(root.Raw), root.Subject.String()
	} else {
		fp, err := client.ParseFingerprint(rootFP)
		if err != nil {
			return fmt.Errorf("%w: --root-fingerprint: %v", errUsage, rotor.ErrorMessageOf(err))
		}
		rootFP = fp
	}
	log, err := common.logger(stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, common.StoreURL, store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	status, err := st.(store.RootReporter).RootStatus(ctx, rootFP)
	if err != nil {
		return err
	}
	if err := printRootStatus(stdout, status, subject, show); err != nil {
		return err
	}
	if !status.Complete() {
		return errNotReady
	}
	return nil
}

// readRoot reads the one CA certificate of a root file.
func readRoot(path string) (*x509.Certificate, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--root: %w", err)
	}
	certs, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", path, err)
	}
	if len(certs) != 1 || !certs[0].IsCA {
		return nil, fmt.Errorf("%w: --root %s must hold one CA certificate, not %d certificates", errUsage, path, len(certs))
	}
	return certs[0], nil
}

// printRootStatus writes key=value lines an operator reads and a script
// can grep.
func printRootStatus(w io.Writer, s *store.RootStatus, subject string, show int) error {
	served := "no (add it to --trust-bundle first: nothing can hold it yet)"
	if s.Served {
		served = "yes"
	}
	p := &errWriter{w: w}
	p.printf("root=%s", s.Root)
	if subject != "" {
		p.printf(" subject=%q", subject)
	}
	p.printf("\nserved=%s\n", served)
	missing := s.Missing()
	p.printf("live_identities=%d holding_new_root=%d missing=%d\n", len(s.Identities), s.Holding(), len(missing))
	p.printf("live_certificates=%d without_root=%d", s.LiveCertificates, s.WithoutRoot)
	if !s.WithoutRootUntil.IsZero() {
		p.printf(" last_without_root_expires=%s", s.WithoutRootUntil.UTC().Format(time.RFC3339))
	}
	p.printf("\n")
	for i, id := range missing {
		if i == show {
			p.printf("... and %d more\n", len(missing)-show)
			break
		}
		bundle := id.BundleFingerprint
		if bundle == "" {
			bundle = "none-reported"
		}
		p.printf("missing %s serial=%s issued_at=%s bundle=%s\n", id.Identity, id.Serial,
			id.IssuedAt.UTC().Format(time.RFC3339), bundle)
	}
	ready := "no"
	if s.Complete() {
		ready = "yes"
	}
	p.printf("ready=%s\n", ready)
	return p.err
}

// errWriter keeps the first write error, so a run of prints checks once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
