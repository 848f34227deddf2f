package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCluster stops a test's own server both ways: while it is down nothing
// connects, and after each restart on the same URL every committed row is
// there, also after the crash of an immediate stop.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartPostgres(t)
	t.Logf("initdb and start: %v", time.Since(start).Round(time.Millisecond))
	// query runs sql on a connection of its own and scans its one row
	// into dest, if any.
	query := func(sql string, dest ...any) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if len(dest) == 0 {
			_, err = conn.Exec(ctx, sql)
			return err
		}
		return conn.QueryRow(ctx, sql).Scan(dest...)
	}
	if err := query(`CREATE TABLE rows (n int)`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mode StopMode
	}{
		{"stop/fast", StopFast},
		{"stop/immediate", StopImmediate},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := query(fmt.Sprintf(`INSERT INTO rows VALUES (%d)`, i)); err != nil {
				t.Fatal(err)
			}
			c.Stop(t, tt.mode)
			if c.Running() {
				t.Error("Running after Stop")
			}
			if err := query(`SELECT 1`); err == nil {
				t.Fatal("connected to a stopped server")
			}
			restart := time.Now()
			c.Start(t)
			t.Logf("start after %s stop: %v", tt.mode, time.Since(restart).Round(time.Millisecond))
			var n int
			if err := query(`SELECT count(*) FROM rows`, &n); err != nil || n != i+1 {
				t.Fatalf("%d committed rows after the restart (%v), want %d", n, err, i+1)
			}
		})
	}
}
