package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinEnv names the variable holding the directory of initdb and
// pg_ctl; without it the newest /usr/lib/postgresql/<version>/bin is used.
const PostgresBinEnv = "ROTOR_TEST_POSTGRES_BIN"

// StopMode is how Cluster.Stop shuts the server down (pg_ctl -m).
type StopMode string

const (
	// StopFast disconnects every session, rolling back open transactions,
	// and shuts down cleanly: a restart or an operator's stop.
	StopFast StopMode = "fast"
	// StopImmediate kills the server without a shutdown checkpoint, as a
	// crash would; the next start runs crash recovery from the WAL.
	StopImmediate StopMode = "immediate"
)

// Cluster is a PostgreSQL server of one test's own, in its t.TempDir(),
// which the test may stop and start again: the store outages that a shared
// server cannot give. It listens on a Unix socket in its directory and on
// no TCP port, so it needs no free port and a restart finds its address
// unchanged. Run as root it runs as the postgres OS user (initdb refuses
// root). fsync is on, as in production: commit latency, and so the
// group-commit batches faults land in, are a real server's. The server is
// stopped when the test ends. A Cluster is not safe for concurrent Stop
// and Start; its URL may be used from anywhere.
type Cluster struct {
	// URL connects as the superuser postgres to database postgres over
	// the socket: postgres://postgres@/postgres?host=<dir>&sslmode=disable.
	URL string

	bin     string   // directory of initdb and pg_ctl
	data    string   // data directory
	log     string   // server log (pg_ctl -l)
	osUser  []string // runuser prefix when the test runs as root
	running bool
}

// StartPostgres makes a cluster with initdb and starts it. Without the
// PostgreSQL server binaries it skips the test, or fails it in CI.
func StartPostgres(t testing.TB) *Cluster {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		Unavailable(t, "the PostgreSQL server binaries (initdb, pg_ctl)", "apt-get install -y postgresql, or set "+PostgresBinEnv+": "+err.Error())
	}
	c := &Cluster{bin: bin}
	root, sock := c.dirs(t)
	c.data, c.log = filepath.Join(root, "data"), filepath.Join(root, "server.log")
	// --no-sync: flushing initdb's files protects against an OS crash,
	// which no test makes; the server itself runs with fsync on.
	if err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listen_addresses = ''\nunix_socket_directories = '%s'\nfsync = on\n"+
		"synchronous_commit = on\nlog_min_messages = warning\n", sock)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("configure the cluster: %v", err)
	}
	c.URL = (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/postgres",
		RawQuery: url.Values{"host": {sock}, "sslmode": {"disable"}}.Encode()}).String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log (%s):\n%s", c.log, tail(c.log, 40))
		}
		// Also after a Start that failed half-way; a server that is not
		// running makes this fail, which is fine.
		if err := c.pgctl("stop", "-m", string(StopImmediate)); err != nil && c.running {
			t.Errorf("stop the test's postgres: %v", err)
		}
	})
	c.Start(t)
	return c
}

// dirs makes the cluster's directory and its socket's, owned by the
// postgres OS user when the test runs as root (initdb refuses root).
func (c *Cluster) dirs(t testing.TB) (root, sock string) {
	t.Helper()
	dir := t.TempDir()
	owner := -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "the postgres OS user (initdb refuses to run as root)", "apt-get install -y postgresql, which creates it")
		}
		owner, _ = strconv.Atoi(u.Uid)
		c.osUser = []string{"runuser", "-u", "postgres", "--"}
		// t.TempDir's parent is 0700; the server only needs to pass through.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// The socket lives in the cluster's directory unless that path is too
	// long for sun_path (107 bytes), as a long GOTMPDIR would make it.
	root = filepath.Join(dir, "pg")
	sock = root
	if len(sock+"/.s.PGSQL.5432") > 100 {
		var err error
		if sock, err = os.MkdirTemp("", "pg"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(sock) })
	}
	for _, d := range []string{root, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner >= 0 {
			if err := os.Chown(d, owner, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root, sock
}

// Start starts the server and waits until it accepts connections. After
// StopImmediate it first replays the WAL (crash recovery).
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.running = true
	if err := c.pgctl("start", "-l", c.log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		t.Fatalf("postgres started but does not accept connections: %v\n%s", err, tail(c.log, 20))
	}
	conn.Close(ctx)
}

// Stop stops the server with pg_ctl stop -m mode and waits until it is
// gone: its sessions are cut and new connections are refused.
func (c *Cluster) Stop(t testing.TB, mode StopMode) {
	t.Helper()
	if err := c.pgctl("stop", "-m", string(mode)); err != nil {
		t.Fatal(err)
	}
	c.running = false
}

// Running reports whether the server was started and not stopped since.
func (c *Cluster) Running() bool { return c.running }

// pgctl runs pg_ctl on the cluster, waiting (-w) for it to finish.
func (c *Cluster) pgctl(args ...string) error {
	return c.run("pg_ctl", append([]string{"-D", c.data, "-w", "-t", "60"}, args...)...)
}

// run runs one of the server binaries, as the postgres OS user when the
// test runs as root.
func (c *Cluster) run(name string, args ...string) error {
	argv := append(slices.Clone(c.osUser), append([]string{filepath.Join(c.bin, name)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Dir(c.data) // runuser keeps the cwd, which must be readable
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, tail(c.log, 20))
	}
	return nil
}

// postgresBin finds the directory of initdb and pg_ctl.
func postgresBin() (string, error) {
	if dir := os.Getenv(PostgresBinEnv); dir != "" {
		return dir, checkBin(dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest version first: "9.6" < "15" numerically, not as strings.
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if checkBin(d) == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), checkBin(filepath.Dir(p))
	}
	return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or on PATH")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(binDir)), ".")[0])
	return v
}

func checkBin(dir string) error {
	for _, name := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// tail is the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
