package signer

import (
	"context"
	"crypto"
	"fmt"
	"io/fs"
	"os"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/fsutil"
)

// openFile loads a PEM private key. A key others can read is refused: the
// issuing key is the CA, and a world-readable copy is a compromise waiting
// to happen. A group-readable key is allowed (Kubernetes fsGroup mounts
// secrets that way) with a warning.
func openFile(ctx context.Context, cfg Config) (Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := cfg.KeyFile
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("signer file: %s has mode %04o, so other users can use the issuing key; "+
			"chmod 0600 it (in Kubernetes set the secret volume's defaultMode to 0400)", path, perm)
	} else if perm&0o070 != 0 {
		cfg.logger().Warn("issuing key file is accessible to its group; 0600 is safer", "path", path, "mode", fmt.Sprintf("%04o", perm))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	key, err := rotor.ParsePrivateKeyPEM(data)
	if err == nil {
		err = checkKey(key.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("signer file %s: %w", path, err)
	}
	return fileKey{rotor.LocalSigner{Key: key}}, nil
}

// LocalKey is a key held in memory (a file's, or one a test made) as a
// Key: Close has nothing to release.
func LocalKey(k crypto.Signer) Key { return fileKey{rotor.LocalSigner{Key: k}} }

// fileKey is a key held in memory: nothing to release at Close.
type fileKey struct{ rotor.LocalSigner }

// Close implements Key.
func (fileKey) Close() error { return nil }

// generateFile writes a new key as PKCS#8 PEM with mode 0600. The file
// appears complete or not at all, and an existing file is never replaced
// (the error wraps fs.ErrExist).
func generateFile(ctx context.Context, cfg Config, kt rotor.KeyType) (Key, error) {
	if _, err := os.Lstat(cfg.KeyFile); err == nil {
		return nil, fmt.Errorf("signer file: refusing to overwrite %s: %w", cfg.KeyFile, fs.ErrExist)
	}
	key, err := rotor.GenerateKey(kt, nil)
	if err != nil {
		return nil, fmt.Errorf("signer file: generate %s: %w", kt, err)
	}
	data, err := rotor.EncodePrivateKeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := fsutil.CreateFileExclusive(cfg.KeyFile, data, 0o600); err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	return fileKey{rotor.LocalSigner{Key: key}}, nil
}
