package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// runTokenCreate stores a new static token's hash where serve (with the same
// --data-dir/--store) reads it, and prints the token alone, once.
func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common commonFlags
		id     rotor.Identity
	)
	f := newFlagSet("token create", stderr)
	common.register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&id.Namespace, "namespace", "", "the identity's namespace (required)")
	f.StringVar(&id.ServiceAccount, "service-account", "", "the identity's service account (required)")
	if err := common.parse(f, args, stderr); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	st, err := common.openStore(ctx, store.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer st.Close()
	token, record, err := rotor.NewStaticToken(rand.Reader, id, time.Now())
	if err != nil {
		return err
	}
	if err := st.CreateToken(ctx, record); err != nil {
		return fmt.Errorf("store token for %s: %w", id, err)
	}
	common.log.Info("created static token", "identity", id.String(), "subject", record.Subject())
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// runMigrate applies the store's schema migrations and exits.
func runMigrate(ctx context.Context, args []string, _, stderr io.Writer) error {
	var common commonFlags
	f := newFlagSet("migrate", stderr)
	common.register(f, "directory of the development CA's SQLite database", true)
	if err := common.parse(f, args, stderr); err != nil {
		return err
	}
	if err := store.Migrate(ctx, common.StoreURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	common.log.Info("store schema is up to date")
	return nil
}
