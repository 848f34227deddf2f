package storecmd

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// runTokenCreate stores a new static token's hash where serve (with the same
// --data-dir/--store) reads it, and prints the token alone, once.
func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common    Flags
		id        rotor.Identity
		admin     bool
		name      string
		expiresIn time.Duration
	)
	f := NewFlagSet("token create", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&id.Namespace, "namespace", "", "the workload identity's namespace (required unless --admin)")
	f.StringVar(&id.ServiceAccount, "service-account", "", "the workload identity's service account (required unless --admin)")
	f.BoolVar(&admin, "admin", false, "an admin token: it may deny identities, revoke certificates and read the audit, and never gets a certificate")
	f.StringVar(&name, "name", "", "who the token is for, as token list shows it (required with --admin)")
	f.DurationVar(&expiresIn, "expires-in", 0, "the token stops working after this long, e.g. 720h (0: until revoked)")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	now := time.Now()
	token, record, err := newToken(id, admin, name, expiresIn, now)
	if err != nil {
		return err
	}
	st, err := common.OpenStore(ctx, store.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateToken(ctx, record, cliAction(now, "")); err != nil {
		return fmt.Errorf("store token %s: %w", record.Subject(), err)
	}
	common.Log.Info("created static token", "identity", id.String(), "admin", admin, "name", name,
		"subject", record.Subject())
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// newToken makes the token create asked for: an admin token, or one for
// id, named name, expiring after expiresIn (0: never).
func newToken(id rotor.Identity, admin bool, name string, expiresIn time.Duration, now time.Time) (string, rotor.StaticToken, error) {
	var (
		token  string
		record rotor.StaticToken
		err    error
	)
	switch {
	case expiresIn < 0:
		return "", record, cli.Usagef("--expires-in must not be negative")
	case admin && id != (rotor.Identity{}):
		return "", record, cli.Usagef("an admin token has no workload identity: drop --namespace and --service-account")
	case admin:
		token, record, err = rotor.NewAdminToken(rand.Reader, name, expiresIn, now)
	default:
		if token, record, err = rotor.NewStaticToken(rand.Reader, id, now); err == nil {
			record.Name = name
			if expiresIn > 0 {
				record.ExpiresAt = now.UTC().Add(expiresIn)
			}
		}
	}
	if rotor.ErrorCodeOf(err) == rotor.EInvalid {
		return "", record, cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	return token, record, err
}

// runTokenList prints every token's subject and state, never the token.
func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	st, err := listStore(ctx, "token list", args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SUBJECT\tFOR\tNAME\tCREATED\tLAST USED\tEXPIRES\tSTATE")
	for _, t := range tokens {
		who := t.Identity.String()
		if t.Admin {
			who = "admin"
		}
		state := "active"
		if err := t.Usable(now); err != nil {
			state = "revoked"
			if t.RevokedAt.IsZero() {
				state = "expired"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Subject(), who, orDash(t.Name), stamp(t.CreatedAt),
			stamp(t.LastUsedAt), stamp(t.ExpiresAt), state)
	}
	return w.Flush()
}

// listStore parses the flags of a list command, which has only the
// common ones, and opens the store it names.
func listStore(ctx context.Context, name string, args []string, stderr io.Writer) (*store.Store, error) {
	var common Flags
	f := NewFlagSet(name, stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	if err := common.Parse(f, args, stderr); err != nil {
		return nil, err
	}
	return common.OpenStore(ctx, store.Options{})
}

// revokeCommand parses a revoke command: what it revokes first (checked
// by check), then the common flags and a required --reason; it opens the
// store they name.
func revokeCommand(ctx context.Context, name, what string, args []string, stderr io.Writer,
	check func(string) error) (string, string, *store.Store, error) {
	var (
		common Flags
		reason string
	)
	f := NewFlagSet(name, stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&reason, "reason", "", "why, for the audit (required)")
	target, err := positional(f, args, what)
	if err == nil {
		err = common.Parse(f, args[1:], stderr)
	}
	switch {
	case err != nil:
		return "", "", nil, err
	case reason == "":
		return "", "", nil, cli.Usagef("--reason is required: the audit says why")
	}
	if err := check(target); err != nil {
		return "", "", nil, err
	}
	st, err := common.OpenStore(ctx, store.Options{})
	return target, reason, st, err
}

// runTokenRevoke revokes one token by its subject: every replica refuses it
// from its next request.
func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subject, reason, st, err := revokeCommand(ctx, "token revoke", "SUBJECT (token:… as token list prints it)", args, stderr,
		func(subject string) error {
			if _, err := rotor.ParseTokenSubject(subject); err != nil {
				return cli.Usagef("%s", rotor.ErrorMessageOf(err))
			}
			return nil
		})
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.RevokeToken(ctx, subject, cliAction(time.Now(), reason))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "revoked %s (%s)\n", t.Subject(), tokenOwner(t))
	return err
}

func tokenOwner(t rotor.StaticToken) string {
	if t.Admin {
		return "admin " + t.Name
	}
	return t.Identity.String()
}

// positional takes a command's one positional argument, which comes before
// its flags: rotor-ca token revoke token:0123456789ab --reason lost.
func positional(f *cli.FlagSet, args []string, what string) (string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return "", f.Parse(args)
		}
		return "", cli.Usagef("give %s first, then the flags", what)
	}
	return args[0], nil
}

// cliAction is an admin action taken with this command on the store: its
// actor is the operating-system user on this host.
func cliAction(now time.Time, reason string) rotor.AdminAction {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	return rotor.AdminAction{Time: now, Actor: rotor.Actor{Name: "cli:" + name, Kind: rotor.ActorCLI}, Reason: reason}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runMigrate applies the store's schema migrations and exits.
func runMigrate(ctx context.Context, args []string, _, stderr io.Writer) error {
	var common Flags
	f := NewFlagSet("migrate", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	if err := store.Migrate(ctx, common.StoreURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	common.Log.Info("store schema is up to date")
	return nil
}
