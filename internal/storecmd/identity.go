package storecmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// runIdentityDeny puts an identity on the deny list in the store: every
// replica refuses it within its --deny-list-refresh.
func runIdentityDeny(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common Flags
		reason string
		revoke bool
	)
	f := NewFlagSet("identity deny", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&reason, "reason", "", "why, for the audit (required)")
	f.BoolVar(&revoke, "revoke", false, "also revoke every live certificate of the identity, in the same action")
	id, st, err := identityCommand(ctx, f, &common, args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	a := cliAction(time.Now(), reason)
	revoked, err := st.DenyIdentity(ctx, rotor.Denial{Identity: id, Time: a.Time, Actor: a.Actor.Name, Reason: reason}, revoke, a)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "denied %s", id)
	if revoke {
		fmt.Fprintf(stdout, "; revoked %d certificates", len(revoked))
	}
	_, err = fmt.Fprintln(stdout)
	for _, s := range revoked {
		fmt.Fprintln(stdout, "  "+s)
	}
	return err
}

// runIdentityAllow takes an identity off the deny list.
func runIdentityAllow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common Flags
		reason string
	)
	f := NewFlagSet("identity allow", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&reason, "reason", "", "why, for the audit (required)")
	id, st, err := identityCommand(ctx, f, &common, args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AllowIdentity(ctx, id, cliAction(time.Now(), reason)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "allowed %s again\n", id)
	return err
}

// identityCommand parses NAMESPACE/SERVICE-ACCOUNT and the flags after it
// (--reason required) and opens the store.
func identityCommand(ctx context.Context, f *cli.FlagSet, common *Flags, args []string,
	stderr io.Writer) (rotor.Identity, *store.Store, error) {
	arg, err := positional(f, args, "the identity as NAMESPACE/SERVICE-ACCOUNT")
	if err == nil {
		err = common.Parse(f, args[1:], stderr)
	}
	if err != nil {
		return rotor.Identity{}, nil, err
	}
	id, err := rotor.ParseIdentity(arg)
	if err != nil {
		return rotor.Identity{}, nil, cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	if r := f.Lookup("reason"); r == nil || r.Value.String() == "" {
		return rotor.Identity{}, nil, cli.Usagef("--reason is required: the audit says why")
	}
	st, err := common.OpenStore(ctx, store.Options{})
	return id, st, err
}

// runCertificateRevoke revokes one certificate by serial.
func runCertificateRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common           Flags
		reasonName, note string
	)
	f := NewFlagSet("certificate revoke", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.StringVar(&reasonName, "reason", "unspecified", "RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, privilegeWithdrawn, …")
	f.StringVar(&note, "comment", "", "why, for the audit (default: the reason)")
	serial, err := positional(f, args, "the SERIAL (hex, either case)")
	if err == nil {
		err = common.Parse(f, args[1:], stderr)
	}
	if err != nil {
		return err
	}
	serial = strings.ToLower(serial)
	reason, err := rotor.ParseRevocationReason(reasonName)
	if err == nil && !rotor.IsLowerHex(serial, 1, rotor.MaxSerialHex) {
		err = rotor.Errorf(rotor.EInvalid, "serial %q is not 1 to %d hex digits", serial, rotor.MaxSerialHex)
	}
	if err != nil {
		return cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	if note == "" {
		note = reason.String()
	}
	st, err := common.OpenStore(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	a := cliAction(time.Now(), note)
	r := rotor.Revocation{Serial: serial, Time: a.Time, Reason: reason, Actor: a.Actor.Name, Comment: note}
	if err := st.RevokeCertificate(ctx, r, a); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "revoked %s (%s)\n", serial, reason)
	return err
}
