package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// runTokenCreate stores a new static token's hash where serve (with the same
// --data-dir/--store) reads it, and prints the token alone, once.
func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var common commonFlags
	var id rotor.Identity
	fs := newFlagSet("token create", stderr)
	common.register(fs)
	fs.StringVar(&id.Namespace, "namespace", "", "the identity's namespace (required)")
	fs.StringVar(&id.ServiceAccount, "service-account", "", "the identity's service account (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, rotor.ErrorMessageOf(err))
	}
	if err := common.resolve(); err != nil {
		return err
	}
	log, err := common.logger(stderr)
	if err != nil {
		return err
	}
	if err := common.prepareStoreDir(); err != nil {
		return err
	}
	st, err := store.Open(ctx, common.StoreURL, store.Options{Logger: log, Migrate: true})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	token, record, err := rotor.NewStaticToken(rand.Reader, id, time.Now())
	if err != nil {
		return err
	}
	if err := st.CreateToken(ctx, record); err != nil {
		return fmt.Errorf("store token for %s: %w", id, err)
	}
	log.Info("created static token", "identity", id.String(), "subject", record.Subject())
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// runMigrate applies the store's schema migrations and exits.
func runMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	var common commonFlags
	fs := newFlagSet("migrate", stderr)
	common.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := common.resolve(); err != nil {
		return err
	}
	log, err := common.logger(stderr)
	if err != nil {
		return err
	}
	if err := common.prepareStoreDir(); err != nil {
		return err
	}
	if err := store.Migrate(ctx, common.StoreURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("store schema is up to date")
	return nil
}
