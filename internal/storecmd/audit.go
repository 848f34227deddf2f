package storecmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// errNotIntact is audit verify finding the chain altered: exit 1, with
// the report on standard output.
type errNotIntact struct{ first string }

func (e errNotIntact) Error() string { return "the audit chain is not intact: " + e.first }
func (errNotIntact) ExitCode() int   { return 1 }

// runAuditVerify recomputes the audit chain and, with --checkpoint, checks
// that it passes through a checkpoint kept elsewhere. Exit 0 only when
// intact.
func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common             Flags
		cpFile, verifierIn string
	)
	f := NewFlagSet("audit verify", stderr)
	common.Register(f, "directory of the development CA's SQLite database and checkpoint key", true)
	f.StringVar(&cpFile, "checkpoint", "", "a signed checkpoint kept elsewhere (as GET /v1/audit/checkpoint or audit checkpoint printed it): the chain must pass through it")
	f.StringVar(&verifierIn, "verifier-key", "", "the checkpoint verifier key, or a file holding it (default: <data-dir>/"+checkpoint.VerifierFile+")")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	var kept *store.Checkpoint
	if cpFile != "" {
		cp, err := readCheckpoint(cpFile, verifierIn, common.DataDir)
		if err != nil {
			return err
		}
		kept = &cp.Checkpoint
	}
	st, err := common.OpenStore(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.VerifyChain(ctx, kept)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, v.Report()); err != nil {
		return err
	}
	if !v.Intact() {
		return errNotIntact{first: v.Problems[0].String()}
	}
	return nil
}

// readCheckpoint opens a kept checkpoint with the verifier key.
func readCheckpoint(path, verifierIn, dataDir string) (*checkpoint.Signed, error) {
	if verifierIn == "" {
		verifierIn = filepath.Join(dataDir, checkpoint.VerifierFile)
	}
	v, err := checkpoint.LoadVerifier(verifierIn)
	if err != nil {
		return nil, cli.Usagef("--verifier-key: %v", err)
	}
	msg, err := os.ReadFile(path)
	if err != nil {
		return nil, cli.Usagef("--checkpoint: %v", err)
	}
	cp, err := checkpoint.Open(msg, v)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", path, err)
	}
	return cp, nil
}

// runAuditCheckpoint signs the chain's head now, keeps it in the store and
// prints it, for an auditor to keep.
func runAuditCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common  Flags
		keyFile string
	)
	f := NewFlagSet("audit checkpoint", stderr)
	common.Register(f, "directory of the development CA's SQLite database and checkpoint key", true)
	f.StringVar(&keyFile, "checkpoint-key", "", "the checkpoint signer key file (default: <data-dir>/"+checkpoint.KeyFile+")")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	signer, err := checkpoint.DataDirSigner(keyFile, common.DataDir)
	if err != nil {
		return err
	}
	if signer == nil {
		return cli.Usagef("no checkpoint key: %s is missing (rotor-ca init makes one)", filepath.Join(common.DataDir, checkpoint.KeyFile))
	}
	st, err := common.OpenStore(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	signed, err := (&checkpoint.Checkpointer{Store: st, Signer: signer, Log: common.Log}).Checkpoint(ctx)
	if err != nil {
		return err
	}
	_, err = stdout.Write(signed.Note)
	return err
}
