// Package agent keeps a workload's certificate fresh: it gets one from a
// Rotor CA at start, writes it with its key and the trust bundle into a
// directory (atomically, see client.WriteFiles), renews it before expiry
// with jittered timing and backed-off retries, or sooner when the CA's
// renewal info says so, and tells the workload with a command or a
// signal. cmd/rotor-agent wires flags to Config.
package agent

import (
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// Config is everything the agent needs. CAURL, OutDir, one of CABundleFile
// and CAFingerprint, and one of TokenFile and Token are required.
type Config struct {
	CAURL string
	// CABundleFile holds the PEM roots that verify the CA; CAFingerprint
	// instead pins the root's SHA-256 for first contact, after which the
	// fetched bundle is kept in OutDir.
	CABundleFile  string
	CAFingerprint string
	// TokenFile is re-read before every request that uses it, since
	// projected service-account tokens rotate. Token is a literal token.
	// Neither is ever logged.
	TokenFile string
	Token     string
	OutDir    string
	// Layout names the files in OutDir, the key's mode and the files'
	// owner, and adds a combined PEM if asked (client.Layout); the zero
	// value is cert.pem, key.pem and bundle.pem, key mode 0600. Names may
	// be paths directly in OutDir (Layout.In).
	Layout  client.Layout
	KeyType rotor.KeyType
	// TTL asks for a lifetime shorter than the CA's default; zero asks for
	// the default.
	TTL         time.Duration
	RenewBefore RenewBefore
	// ReuseKey keeps the key across renewals instead of making a new one
	// each time.
	ReuseKey bool
	// Exec runs through /bin/sh -c after each new certificate is in place,
	// bounded by ExecTimeout. Signal, sent to the process whose ID is in
	// PIDFile, is the alternative.
	Exec        string
	ExecTimeout time.Duration
	// ExecEnv is Exec's environment, to which the agent adds what changed
	// (ROTOR_CERT_SERIAL and the like); nil means the agent's own. The
	// wiring leaves the CA credential out of it: a reload command has no
	// business with it.
	ExecEnv []string
	Signal  syscall.Signal
	PIDFile string
	// Once makes Run return after making sure a valid certificate is on
	// disk, for init containers and cron. It retries retryable failures
	// (the CA starting up beside it, a full disk) for up to OnceTimeout,
	// zero meaning DefaultOnceTimeout, and gives up at once on a refusal.
	// A failing hook makes Run fail too.
	Once        bool
	OnceTimeout time.Duration
	// RequestTimeout bounds each request to the CA; zero means 10s.
	RequestTimeout time.Duration
	// RenewalInfoInterval is how often the agent asks the CA's renewal
	// info (GET /v1/renewal-info) about the certificate on disk, besides
	// its own schedule: sooner when the CA's Retry-After says so, but not
	// under rotor.MinRenewalRetryAfter unless the interval is shorter
	// itself. Zero never asks; neither does Once.
	RenewalInfoInterval time.Duration
	// Subscriber, if set, hears of every certificate put in place (the
	// Workload API socket serves what it hears).
	Subscriber Subscriber

	Logger *slog.Logger
	// Now and Rand (uniform in [0,1)) are injected for tests; nil means
	// the clock and math/rand/v2.
	Now  func() time.Time
	Rand func() float64
}

// DefaultOnceTimeout is how long Once mode retries when OnceTimeout is
// zero: long enough for a CA started at the same time (a Pod, a compose
// file) to come up, short enough that a lasting outage ends the run.
const DefaultOnceTimeout = 5 * time.Minute

// DefaultRenewalInfoInterval is rotor-agent's --renewal-info-interval:
// the CA's own default Retry-After, so a revocation or an issuer rotation
// reaches the agent within five minutes at one small request each.
const DefaultRenewalInfoInterval = rotor.DefaultRenewalRetryAfter

// Validate checks the values that do not need the network or the disk.
func (c *Config) Validate() error {
	switch {
	case c.CAURL == "":
		return fmt.Errorf("--ca-url is required")
	case !strings.HasPrefix(c.CAURL, "https://"):
		return fmt.Errorf("--ca-url %q must start with https://", c.CAURL)
	case (c.CABundleFile == "") == (c.CAFingerprint == ""):
		return fmt.Errorf("give exactly one of --ca-bundle and --ca-fingerprint")
	case (c.TokenFile == "") == (c.Token == ""):
		return fmt.Errorf("give exactly one of --token-file and --token")
	case c.OutDir == "":
		return fmt.Errorf("--out-dir is required")
	case c.TTL != 0 && c.TTL < rotor.MinTTL:
		return fmt.Errorf("--ttl %v is shorter than the minimum %v", c.TTL, rotor.MinTTL)
	case c.Exec != "" && c.Signal != 0:
		return fmt.Errorf("give --exec or --signal, not both")
	case (c.Signal == 0) != (c.PIDFile == ""):
		return fmt.Errorf("--signal and --pid-file go together")
	case c.ExecTimeout < 0 || c.RequestTimeout < 0 || c.OnceTimeout < 0 || c.RenewalInfoInterval < 0:
		return fmt.Errorf("timeouts and --renewal-info-interval must not be negative")
	}
	if c.CAFingerprint != "" {
		if _, err := rotor.ParseFingerprint(c.CAFingerprint); err != nil {
			return fmt.Errorf("--ca-fingerprint: %w", err)
		}
	}
	l, err := c.Layout.In(c.OutDir)
	if err == nil {
		err = l.Validate()
	}
	if err != nil {
		return fmt.Errorf("output files: %w", err)
	}
	if _, err := rotor.ParseKeyType(string(c.KeyType)); err != nil {
		return fmt.Errorf("--key-type: %w", err)
	}
	return c.RenewBefore.validate()
}

// RenewBefore is how long before expiry to renew: a fixed Duration, or a
// Share of the certificate's lifetime (0.33 for "33%"). Exactly one is set.
type RenewBefore struct {
	Duration time.Duration
	Share    float64
}

// DefaultRenewBefore renews at the point the CA's renew_after suggests:
// rotor.RenewShare into the lifetime, a third of it before expiry.
var DefaultRenewBefore = RenewBefore{Share: 1 - rotor.RenewShare}

// ParseRenewBefore reads "1h" or "33%".
func ParseRenewBefore(s string) (RenewBefore, error) {
	var r RenewBefore
	if pct, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil {
			return r, fmt.Errorf("renew-before %q: not a percentage", s)
		}
		r.Share = v / 100
	} else {
		d, err := time.ParseDuration(s)
		if err != nil {
			return r, fmt.Errorf("renew-before %q: not a duration (1h) or a share of the lifetime (33%%)", s)
		}
		r.Duration = d
	}
	return r, r.validate()
}

func (r RenewBefore) validate() error {
	switch {
	case r.Share != 0 && r.Duration != 0:
		return fmt.Errorf("renew-before: a duration or a share, not both")
	case r.Share == 0 && r.Duration <= 0:
		return fmt.Errorf("renew-before: must be a positive duration or share")
	case r.Share < 0 || r.Share >= 1:
		return fmt.Errorf("renew-before: the share %v%% must be above 0%% and below 100%%", r.Share*100)
	}
	return nil
}

// String is the flag form.
func (r RenewBefore) String() string {
	if r.Duration != 0 {
		return r.Duration.String()
	}
	return strconv.FormatFloat(r.Share*100, 'g', 4, 64) + "%"
}

// Set implements flag.Value.
func (r *RenewBefore) Set(s string) error {
	v, err := ParseRenewBefore(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// signals are the names --signal accepts, with or without "SIG".
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
}

// ParseSignal reads a signal name such as "HUP" or "SIGUSR2", or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("signal %q is not one of HUP, INT, QUIT, TERM, USR1, USR2, WINCH or a number", s)
}

// ParseMode reads a file mode flag (--key-mode, --workload-api-socket-mode):
// permission bits in octal, such as 0640, not 0. Whether they keep a key
// private is for the caller (client.Layout's Validate) to judge.
func ParseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(strings.TrimSpace(s), 8, 32)
	if err != nil || m == 0 || m&^0o777 != 0 {
		return 0, fmt.Errorf("mode %q: want permission bits in octal, such as 0600 or 0640", s)
	}
	return os.FileMode(m), nil
}

// ParseOwner reads --owner: "user", "user:group" or ":group", each a name
// or a numeric ID. A user alone keeps the agent's group, as chown does.
func ParseOwner(s string) (*client.Owner, error) {
	name, group, _ := strings.Cut(strings.TrimSpace(s), ":")
	if name == "" && group == "" {
		return nil, fmt.Errorf("owner %q: want user, user:group or :group", s)
	}
	o := &client.Owner{UID: -1, GID: -1}
	var err error
	if name != "" {
		if o.UID, err = lookupUID(name); err != nil {
			return nil, fmt.Errorf("owner %q: %w", s, err)
		}
	}
	if group != "" {
		if o.GID, err = LookupGroup(group); err != nil {
			return nil, fmt.Errorf("owner %q: %w", s, err)
		}
	}
	return o, nil
}

// lookupUID is a numeric user ID as it is, or a user name's ID.
func lookupUID(s string) (int, error) {
	if id, err := strconv.Atoi(s); err == nil && id >= 0 {
		return id, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}

// LookupGroup is a numeric group ID as it is, or a group name's ID: for
// --owner and --workload-api-socket-group alike.
func LookupGroup(s string) (int, error) {
	if id, err := strconv.Atoi(s); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
