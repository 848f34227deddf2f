package storecmd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// runEABCreate stores a new External Account Binding key for an identity
// and prints, once, its key ID and base64url HMAC key on one line, so that
// `read KID HMAC < <(rotor-ca acme eab create …)` works.
func runEABCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common    Flags
		id        rotor.Identity
		expiresIn time.Duration
	)
	f := NewFlagSet("acme eab create", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&id.Namespace, "namespace", "", "the identity's namespace (required)")
	f.StringVar(&id.ServiceAccount, "service-account", "", "the identity's service account (required)")
	f.DurationVar(&expiresIn, "expires-in", 0, "the key can bind an account for this long, e.g. 24h (0: until used or revoked)")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	now := time.Now()
	k, err := rotor.NewEABKey(rand.Reader, id, expiresIn, now)
	if rotor.ErrorCodeOf(err) == rotor.EInvalid {
		return cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	if err != nil {
		return err
	}
	st, err := common.OpenStore(ctx, store.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateEABKey(ctx, k, cliAction(now, "")); err != nil {
		return fmt.Errorf("store EAB key %s: %w", k.KeyID, err)
	}
	// The HMAC key goes to stdout once and nowhere else: not to the log.
	common.Log.Info("created EAB key", "identity", id.String(), "kid", k.KeyID, "expires", stamp(k.ExpiresAt))
	_, err = fmt.Fprintln(stdout, k.KeyID, base64.RawURLEncoding.EncodeToString(k.HMAC))
	return err
}

// runEABList prints every EAB key's ID, identity and state, never an
// HMAC key.
func runEABList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	st, err := listStore(ctx, "acme eab list", args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.EABKeys(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tFOR\tCREATED\tEXPIRES\tBOUND\tACCOUNT\tSTATE")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Identity, stamp(k.CreatedAt), stamp(k.ExpiresAt),
			stamp(k.BoundAt), orDash(k.AccountID), k.State(now))
	}
	return w.Flush()
}

// runEABRevoke revokes an unused EAB key and erases its HMAC key.
func runEABRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kid, reason, st, err := revokeCommand(ctx, "acme eab revoke", "KID (eab_… as eab create and eab list print it)", args, stderr,
		func(kid string) error {
			if !rotor.ValidEABKeyID(kid) {
				return cli.Usagef("%q is not an EAB key ID: want eab_ and 16 base64url characters, as eab list prints it", kid)
			}
			return nil
		})
	if err != nil {
		return err
	}
	defer st.Close()
	k, err := st.RevokeEABKey(ctx, kid, cliAction(time.Now(), reason))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "revoked %s (%s)\n", k.KeyID, k.Identity)
	return err
}
