//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import "context"

// lockDir does nothing where flock is unavailable: concurrent migrations of
// one SQLite file must then be serialised by the operator (run
// `rotor-ca migrate` once before starting replicas).
func lockDir(ctx context.Context, path string) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
