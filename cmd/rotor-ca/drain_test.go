package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestDrainOnSIGTERM sends SIGTERM while requests are in flight, held there
// by a lock the test takes on the issuances table so that their commits
// wait: the CA must stop accepting, let each of them finish, with its
// certificate and its row, or fail without a certificate, and exit 0.
// The lock then either goes away (the commits go through, after the
// signal) or the database does (they fail).
func TestDrainOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	tests := []struct {
		name string
		// release lets the held commits go on, after the signal.
		release func(t *testing.T, pg *testenv.Cluster, lock pgx.Tx)
		drains  bool // requests in flight at the signal get their 201s
	}{
		{"ok/commits-go-through", func(t *testing.T, _ *testenv.Cluster, lock pgx.Tx) {
			if err := lock.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"ok/store-stops-during-drain", func(t *testing.T, pg *testenv.Cluster, _ pgx.Tx) {
			pg.Stop(t, testenv.StopFast)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pg := testenv.StartPostgres(t)
			ca, token := servePostgres(t, pg.URL)
			const workloads = 8
			load := startFleet(t, ca, token, workloads, faultsPace)
			load.waitCreated(t, 2*workloads, 30*time.Second)

			conn, err := pgx.Connect(t.Context(), pg.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			lock, err := conn.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.Exec(t.Context(), `LOCK TABLE issuances IN EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			db := openPostgresDB(t, pg.URL)
			e2etest.WaitFor(t, "commits waiting for the lock, and every workload in a request", 30*time.Second, func() bool {
				var waiting int
				err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
					WHERE application_name = 'rotor-ca' AND wait_event_type = 'Lock'`).Scan(&waiting)
				return err == nil && waiting > 0 && load.inFlight.Load() == workloads
			})
			before := load.created()
			if err := ca.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			addr := strings.TrimPrefix(ca.URL, "https://")
			e2etest.WaitFor(t, "rotor-ca to stop accepting connections", 30*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			if ca.Exited() {
				t.Fatal("rotor-ca exited with requests in flight")
			}
			tt.release(t, pg, lock)
			e2etest.WaitFor(t, "rotor-ca to exit", 30*time.Second, ca.Exited)
			if code := ca.Cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("rotor-ca exited %d after SIGTERM, want 0", code)
			}
			load.stop()
			drained := load.created() - before
			if tt.drains && drained == 0 {
				t.Error("no request in flight at SIGTERM got its certificate")
			}
			if other := load.unexpected(rotor.ECAUnreachable, rotor.EStoreUnavailable); len(other) > 0 {
				t.Errorf("failures other than %s and %s: %v", rotor.ECAUnreachable, rotor.EStoreUnavailable, other)
			}
			if !pg.Running() {
				pg.Start(t)
			}
			a := load.audit(t, db)
			t.Logf("%v drained=%d store_unavailable=%d", a, drained, load.failed(rotor.EStoreUnavailable))
		})
	}
}
