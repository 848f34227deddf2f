package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/rotor-dev/rotor"
)

// ReadyCheck is one dependency /readyz asks about.
type ReadyCheck struct {
	// Name appears in the problem detail and the log when the check fails.
	// The wiring supplies the checks: the store's Ping (StoreReady), the
	// issuing key's test signature (rotor.CheckSigner, through whatever
	// watches the key's health).
	Name string
	// Check returns nil when the dependency can serve now. It must honour
	// ctx; /readyz runs all checks at once under one short deadline.
	Check func(ctx context.Context) error
	// Code answers a failure whose error carries no code of HTTP status 503
	// (a plain error, a deadline): rotor.EStoreUnavailable,
	// rotor.ESignerUnavailable or rotor.EAuthUnavailable.
	Code rotor.ErrorCode
}

func (c ReadyCheck) validate() error {
	if c.Name == "" || c.Check == nil {
		return fmt.Errorf("name and check function are required")
	}
	if c.Code.HTTPStatus() != http.StatusServiceUnavailable {
		return fmt.Errorf("check %q: code %q is not an unavailable code", c.Name, c.Code)
	}
	return nil
}

// StoreReady checks that the store answers: its Ping.
func StoreReady(s interface{ Ping(context.Context) error }) ReadyCheck {
	return ReadyCheck{Name: "store", Check: s.Ping, Code: rotor.EStoreUnavailable}
}

// health answers that the process is up; it checks nothing else, so a
// database outage does not get the CA restarted.
func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// ready runs every check in parallel under ReadyTimeout and answers 200, or
// 503 with the first failing check (in configuration order) named.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	errs := make([]error, len(s.cfg.Ready))
	var wg sync.WaitGroup
	for i, c := range s.cfg.Ready {
		wg.Go(func() { errs[i] = c.Check(ctx) })
	}
	wg.Wait()
	var first error
	for i, err := range errs {
		if err == nil {
			continue
		}
		c := s.cfg.Ready[i]
		code, why := rotor.ErrorCodeOf(err), rotor.ErrorMessageOf(err)
		if code.HTTPStatus() != http.StatusServiceUnavailable {
			code, why = c.Code, "it did not answer in time or failed"
		}
		err = rotor.WrapError(code, err, "readiness check %q failed: %s", c.Name, why)
		s.log.Warn("not ready", "check", c.Name, "code", code, "error", err)
		if first == nil {
			first = err
		}
	}
	if first != nil {
		s.problem.write(w, r, first)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// openAPI serves the contract the server is held to.
func (s *server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(rotor.OpenAPI)
}
