package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/bench/load"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// system is one thing measured: its servers, how to reach and trust them,
// and the Postgres database (if any) whose backends' CPU it is charged.
type system struct {
	name  string
	urls  []string
	roots *x509.CertPool
	token string
	procs []*proc
	db    string // scratch database name, "" without Postgres
	store string // rotor-ca --store, "" for a ceiling
}

// startCeiling starts bench/cmd/ceiling in mode bare or noop.
func (h *harness) startCeiling(name, mode string) (*system, error) {
	root := filepath.Join(h.work, name+"-root.crt")
	p, err := start(filepath.Join(h.work, name+".log"), nil, h.bin("ceiling"), "-mode", mode, "-root", root)
	if err != nil {
		return nil, err
	}
	h.stops = append(h.stops, p.stop)
	addr, err := p.servingAddr(15 * time.Second)
	if err != nil {
		return nil, err
	}
	roots, err := load.ReadRoots(root)
	return &system{name: name, urls: []string{addr}, roots: roots, token: "none", procs: []*proc{p}}, err
}

// rotorOpts is how to start one rotor-ca system.
type rotorOpts struct {
	name     string
	postgres bool     // a fresh Postgres database; else SQLite in the data dir
	replicas int      // rotor-ca processes sharing the store (and data dir)
	env      []string // added to rotor-ca's environment (SoftHSM2)
	args     []string // added to serve
	initArgs []string // if set, rotor-ca init runs first with them
}

// startRotor starts o.replicas rotor-ca processes on a fresh data dir and
// store, and makes a static token for default/bench.
func (h *harness) startRotor(o rotorOpts) (*system, error) {
	s := &system{name: o.name}
	data := filepath.Join(h.work, o.name)
	s.store = "sqlite://" + filepath.Join(data, "rotor.db")
	if o.postgres {
		var err error
		if s.db, s.store, err = h.scratchDB(); err != nil {
			return nil, err
		}
	}
	if o.initArgs != nil {
		if _, err := run(o.env, h.bin("rotor-ca"), append([]string{"init", "--data-dir", data}, o.initArgs...)...); err != nil {
			return nil, err
		}
	}
	for i := range max(1, o.replicas) {
		if err := h.startReplica(s, data, i, o); err != nil {
			return nil, err
		}
	}
	tok, err := run(o.env, h.bin("rotor-ca"), "token", "create", "--data-dir", data, "--store", s.store,
		"--namespace", "default", "--service-account", "bench")
	if err != nil {
		return nil, err
	}
	s.token = strings.TrimSpace(string(tok))
	s.roots, err = load.ReadRoots(filepath.Join(data, "root.crt"))
	return s, err
}

// startReplica starts replica i of s and waits until it serves. Replicas
// start one after the other: the first creates the development CA in the
// data dir, the others find it there.
func (h *harness) startReplica(s *system, data string, i int, o rotorOpts) error {
	args := append([]string{"serve", "--data-dir", data, "--store", s.store, "--listen", "127.0.0.1:0",
		"--log-format", "json"}, o.args...)
	p, err := start(filepath.Join(h.work, fmt.Sprintf("%s-%d.log", o.name, i)), o.env, h.bin("rotor-ca"), args...)
	if err != nil {
		return err
	}
	h.stops = append(h.stops, p.stop)
	addr, err := p.servingAddr(60 * time.Second)
	if err != nil {
		return err
	}
	s.urls = append(s.urls, addr)
	s.procs = append(s.procs, p)
	return nil
}

// scratchDB creates an empty database for one system and returns its
// name and URL; it is dropped when the harness ends. A database of its
// own, not a schema, so its backends are told apart in pg_stat_activity.
func (h *harness) scratchDB() (string, string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "rotor_bench_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.pg.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	h.stops = append(h.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := h.pg.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			h.log.Warn("cannot drop scratch database", "database", name, "error", err)
		}
	})
	u, err := url.Parse(h.pgURL)
	if err != nil {
		return "", "", fmt.Errorf("--postgres: %w", err)
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

// backends are the PIDs of the Postgres backends serving database db.
func (h *harness) backends(ctx context.Context, db string) ([]int, error) {
	rows, err := h.pg.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
	if err != nil {
		return nil, fmt.Errorf("list backends: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// softHSM makes a fresh SoftHSM2 token in the work dir and returns the
// environment and init arguments for a pkcs11 rotor-ca, or ok false when
// SoftHSM2 is not installed.
func (h *harness) softHSM() (env, initArgs []string, ok bool, err error) {
	module := os.Getenv(testenv.PKCS11ModuleEnv) // as the tests find it
	if module == "" {
		module = testenv.DefaultSoftHSMModule
	}
	util, lookErr := exec.LookPath("softhsm2-util")
	if _, statErr := os.Stat(module); lookErr != nil || statErr != nil {
		return nil, nil, false, nil
	}
	dir := filepath.Join(h.work, "softhsm")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		return nil, nil, false, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + filepath.Join(dir, "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, nil, false, err
	}
	env = []string{"SOFTHSM2_CONF=" + conf, "ROTOR_PKCS11_PIN=1234"}
	if _, err := run(env, util, "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678"); err != nil {
		return nil, nil, false, err
	}
	return env, []string{"--signer", "pkcs11", "--pkcs11-module", module, "--pkcs11-token", "bench",
		"--pkcs11-key-label", "issuer"}, true, nil
}
