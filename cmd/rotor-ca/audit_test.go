package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// auditStore is a store the audit commands run on, and a plain SQL door
// into it, as someone with database access would have.
type auditStore struct {
	name  string
	args  func(t *testing.T, dataDir string) []string // --store …
	exec  func(t *testing.T, url, sql string)
	count func(t *testing.T, url, query string) int64
}

var auditStores = []auditStore{
	{"sqlite", func(t *testing.T, dir string) []string { return []string{"--data-dir", dir} },
		func(t *testing.T, url, query string) {
			db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://")+"?_pragma=busy_timeout(5000)")
			if err == nil {
				_, err = db.ExecContext(t.Context(), query)
				db.Close()
			}
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		func(t *testing.T, url, query string) int64 {
			return countRows(t, strings.TrimPrefix(url, "sqlite://"), query)
		}},
	{"postgres", func(t *testing.T, dir string) []string {
		return []string{"--data-dir", dir, "--store", testenv.PostgresURL(t)}
	}, func(t *testing.T, url, query string) {
		conn, err := pgx.Connect(t.Context(), url)
		if err == nil {
			_, err = conn.Exec(t.Context(), query)
			conn.Close(context.Background())
		}
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}, func(t *testing.T, url, query string) int64 {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int64
		if err := conn.QueryRow(t.Context(), query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}},
}

// storeURL is the store the args name.
func storeURL(args []string) string {
	for i, a := range args {
		if a == "--store" {
			return args[i+1]
		}
	}
	return "sqlite://" + filepath.Join(args[1], "rotor.db")
}

// seedAudit writes six admin actions with the CLI (places 1 to 6) and a
// checkpoint key in dir.
func seedAudit(t *testing.T, args []string) {
	t.Helper()
	for _, sa := range []string{"a", "b", "c"} {
		createTokenWith(t, "shop", sa, args...)
	}
	for _, cmd := range [][]string{{"identity", "deny", "shop/a", "--reason", "compromised"},
		{"identity", "allow", "shop/a", "--reason", "rebuilt"}, {"identity", "deny", "shop/b", "--reason", "gone"}} {
		if _, errOut, code := rotorCACmd(t, nil, append(cmd, args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", cmd, code, errOut)
		}
	}
	if _, err := checkpoint.NewKey(args[1], "rotor-audit-test"); err != nil {
		t.Fatal(err)
	}
}

// TestAuditVerify: audit verify exits 0 on an untouched store and 1,
// naming the first row, after each kind of change made with plain SQL; a
// chain recomputed after an edit verifies on its own but not against a
// checkpoint kept from before.
func TestAuditVerify(t *testing.T) {
	t.Parallel()
	tampers := []struct{ name, sql, want string }{
		{"edit", `UPDATE admin_action_log SET reason = 'routine' WHERE chain_seq = 4`, "altered: admin_action_log row"},
		{"delete", `DELETE FROM admin_action_log WHERE chain_seq = 2`, "deleted: no row holds chain place 2"},
		{"insert", `INSERT INTO admin_action_log (time, actor, actor_kind, action, target)
			VALUES ('2026-12-01 00:00:00', 'cli:root', 'cli', 'identity.allow', 'shop/b')`, "inserted: admin_action_log row"},
		{"reorder", `UPDATE admin_action_log SET chain_seq = -1 WHERE chain_seq = 1;
			UPDATE admin_action_log SET chain_seq = 1 WHERE chain_seq = 5;
			UPDATE admin_action_log SET chain_seq = 5 WHERE chain_seq = -1`, "reordered: admin_action_log row"},
	}
	for _, st := range auditStores {
		for _, tc := range tampers {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				args := st.args(t, t.TempDir())
				seedAudit(t, args)
				verify := append([]string{"audit", "verify"}, args...)
				if out, errOut, code := rotorCACmd(t, nil, verify...); code != 0 || !strings.Contains(out, "intact: 6 rows") {
					t.Fatalf("untouched store: exit %d: %s%s", code, out, errOut)
				}
				st.exec(t, storeURL(args), tc.sql)
				out, errOut, code := rotorCACmd(t, nil, verify...)
				if code != 1 || !strings.Contains(strings.SplitN(out, "\n", 3)[1], tc.want) {
					t.Fatalf("after %s: exit %d, want 1 with first problem %q:\n%s%s", tc.name, code, tc.want, out, errOut)
				}
			})
		}
		t.Run(st.name+"/recomputed", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := st.args(t, dir)
			seedAudit(t, args)
			kept, errOut, code := rotorCACmd(t, nil, append([]string{"audit", "checkpoint"}, args...)...)
			if code != 0 {
				t.Fatalf("audit checkpoint: exit %d: %s", code, errOut)
			}
			keptFile := filepath.Join(t.TempDir(), "kept")
			if err := os.WriteFile(keptFile, []byte(kept), 0o600); err != nil {
				t.Fatal(err)
			}
			verify := append([]string{"audit", "verify", "--checkpoint", keptFile}, args...)
			if out, errOut, code := rotorCACmd(t, nil, verify...); code != 0 {
				t.Fatalf("against its own checkpoint: exit %d: %s%s", code, out, errOut)
			}
			// Edit a row, then have the store seal every row afresh: a
			// chain recomputed from scratch, as an attacker with the
			// source would.
			st.exec(t, storeURL(args), `UPDATE admin_action_log SET reason = 'routine' WHERE chain_seq = 4;
				UPDATE admin_action_log SET chain_seq = NULL, chain_hash = NULL;
				UPDATE audit_chain SET seq = 0, hash = base_hash, sealed = false`)
			if out, errOut, code := rotorCACmd(t, nil, append([]string{"audit", "verify"}, args...)...); code != 0 {
				t.Fatalf("the recomputed chain should verify on its own: exit %d: %s%s", code, out, errOut)
			}
			out, errOut, code := rotorCACmd(t, nil, verify...)
			if code != 1 || !strings.Contains(out, "rewritten") {
				t.Fatalf("recomputed chain against the kept checkpoint: exit %d, want 1 and rewritten:\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestCheckpointEndpoints: the development CA makes a checkpoint key; an
// admin signs the head with POST /v1/audit/checkpoint, GET serves it to
// anyone, and audit verify checks the chain against it.
func TestCheckpointEndpoints(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "rotor-data")
	ca := serveCA(t, nil, filepath.Join(data, "root.crt"), "--data-dir", data)
	out, errOut, code := rotorCACmd(t, nil, "token", "create", "--admin", "--name", "auditor", "--data-dir", data)
	if code != 0 {
		t.Fatalf("token create --admin: %d %s", code, errOut)
	}
	admin := strings.TrimSpace(out)
	hc := tlsClient(t, filepath.Join(data, "root.crt"))
	do := func(method, token string) (int, string) {
		req, err := http.NewRequest(method, ca.URL+"/v1/audit/checkpoint", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(http.MethodPost, ""); code != http.StatusUnauthorized {
		t.Fatalf("POST without credentials: %d %s", code, body)
	}
	code, signed := do(http.MethodPost, admin)
	if code != http.StatusCreated || !strings.HasPrefix(signed, "rotor-audit-cluster.local\n") {
		t.Fatalf("POST as admin: %d %q", code, signed)
	}
	if code, got := do(http.MethodGet, ""); code != http.StatusOK || got != signed {
		t.Fatalf("GET: %d %q, want the signed checkpoint", code, got)
	}
	ca.Stop(t)
	kept := filepath.Join(t.TempDir(), "kept")
	if err := os.WriteFile(kept, []byte(signed), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := rotorCACmd(t, nil, "audit", "verify", "--data-dir", data, "--checkpoint", kept); code != 0 {
		t.Fatalf("audit verify against the served checkpoint: exit %d: %s%s", code, out, errOut)
	}
}
