// Package checkpoint signs the head of the audit chain as a signed note
// (golang.org/x/mod/sumdb/note), so that an auditor who keeps the notes
// elsewhere can later prove the store's history was not rewritten, even by
// someone who recomputed every hash in it: a rewritten chain no longer
// passes through a kept checkpoint.
//
// A checkpoint's text is four lines, in the spirit of the C2SP
// tlog-checkpoint format:
//
//	<origin: the key's name>
//	<chain place, decimal>
//	<chain hash at that place, base64>
//	<signing time, RFC 3339>
//
// followed by the note's signature line.
package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/fsutil"
	"github.com/rotor-dev/rotor/store"
)

// Files a key pair is kept in, in a data directory: the signer key (secret,
// mode 0600) and the verifier key an auditor is given.
const (
	KeyFile      = "audit-checkpoint.key"
	VerifierFile = "audit-checkpoint.pub"
)

// Signed is one signed checkpoint.
type Signed struct {
	store.Checkpoint
	Time time.Time
	// Note is the signed note as served and kept.
	Note []byte
}

// NewKey makes a key pair named name (no spaces or '+'; the trust domain
// is a good one) and writes both files into dir, refusing to overwrite.
func NewKey(dir, name string) (verifier string, err error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", fmt.Errorf("checkpoint key %q: %w", name, err)
	}
	if err := fsutil.CreateFileExclusive(filepath.Join(dir, KeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write checkpoint key: %w", err)
	}
	if err := fsutil.CreateFileExclusive(filepath.Join(dir, VerifierFile), []byte(vkey+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write checkpoint verifier key: %w", err)
	}
	return vkey, nil
}

// LoadSigner reads a signer key file.
func LoadSigner(path string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		// The key itself is never part of the message.
		return nil, fmt.Errorf("checkpoint key %s is not a note signer key (PRIVATE+KEY+…)", path)
	}
	return s, nil
}

// DataDirSigner reads keyFile, or dir's KeyFile if keyFile is "": nil,
// nil when dir has none (checkpoints off).
func DataDirSigner(keyFile, dir string) (note.Signer, error) {
	path := keyFile
	if path == "" {
		path = filepath.Join(dir, KeyFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return LoadSigner(path)
}

// EnsureKey makes dir's key pair if it has none, named after the trust
// domain, and logs the verifier key an auditor needs.
func EnsureKey(dir, trustDomain string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		return nil
	}
	vkey, err := NewKey(dir, "rotor-audit-"+trustDomain)
	if err != nil {
		return err
	}
	log.Warn("created the audit checkpoint key: give its verifier key to your auditors",
		"key", filepath.Join(dir, KeyFile), "verifier_key", vkey)
	return nil
}

// LoadVerifier reads a verifier key: the key itself (name+hash+key) or a
// file holding it.
func LoadVerifier(keyOrPath string) (note.Verifier, error) {
	text := keyOrPath
	if b, err := os.ReadFile(keyOrPath); err == nil {
		text = string(b)
	} else if !strings.Contains(keyOrPath, "+") {
		return nil, fmt.Errorf("checkpoint verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier key %q: %w", keyOrPath, err)
	}
	return v, nil
}

// Sign signs cp at t with s.
func Sign(s note.Signer, cp store.Checkpoint, t time.Time) (*Signed, error) {
	t = t.UTC().Truncate(time.Second)
	text := fmt.Sprintf("%s\n%d\n%s\n%s\n", s.Name(), cp.Seq, base64.StdEncoding.EncodeToString(cp.Hash),
		t.Format(time.RFC3339))
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return &Signed{Checkpoint: cp, Time: t, Note: msg}, nil
}

// ErrBadCheckpoint is the error (wrapped) for a note that is not a
// checkpoint signed by the expected key.
var ErrBadCheckpoint = errors.New("not a checkpoint signed by this key")

// Open verifies msg with v and reads the checkpoint in it.
func Open(msg []byte, v note.Verifier) (*Signed, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) != 4 || lines[0] != v.Name() {
		return nil, fmt.Errorf("%w: want 4 lines starting with the origin %q", ErrBadCheckpoint, v.Name())
	}
	seq, err1 := strconv.ParseInt(lines[1], 10, 64)
	hash, err2 := base64.StdEncoding.DecodeString(lines[2])
	t, err3 := time.Parse(time.RFC3339, lines[3])
	if err := errors.Join(err1, err2, err3); err != nil || seq < 0 || len(hash) != 32 {
		return nil, fmt.Errorf("%w: malformed place, hash or time", ErrBadCheckpoint)
	}
	return &Signed{Checkpoint: store.Checkpoint{Seq: seq, Hash: hash}, Time: t, Note: bytes.Clone(msg)}, nil
}

// Keeper is what a Checkpointer needs from the store.
type Keeper interface {
	ChainHead(ctx context.Context) (store.Checkpoint, error)
	SaveCheckpoint(ctx context.Context, cp store.Checkpoint, signedAt time.Time, note []byte) error
	LatestCheckpoint(ctx context.Context) (store.Checkpoint, []byte, error)
}

// Checkpointer signs the chain head and keeps the note in the store, where
// every replica serves the latest.
type Checkpointer struct {
	Store  Keeper
	Signer note.Signer
	Now    func() time.Time
	Log    *slog.Logger
}

// Checkpoint signs the current head now and stores it.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Signed, error) {
	head, err := c.Store.ChainHead(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	signed, err := Sign(c.Signer, head, now())
	if err != nil {
		return nil, err
	}
	if err := c.Store.SaveCheckpoint(ctx, head, signed.Time, signed.Note); err != nil {
		return nil, err
	}
	return signed, nil
}

// Run signs a checkpoint every interval while the chain has grown since
// the last one any replica stored, until ctx ends.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration) {
	rotor.Periodically(ctx, every, c.Log, "sign an audit checkpoint", c.tick)
}

func (c *Checkpointer) tick(ctx context.Context) error {
	head, err := c.Store.ChainHead(ctx)
	if err != nil {
		return err
	}
	last, _, err := c.Store.LatestCheckpoint(ctx)
	switch {
	case err == nil && last.Seq >= head.Seq:
		return nil
	case err != nil && rotor.ErrorCodeOf(err) != rotor.ENotFound:
		return err
	}
	_, err = c.Checkpoint(ctx)
	return err
}

// Latest is the newest stored checkpoint's note (ENotFound before the
// first): what GET /v1/audit/checkpoint serves.
func (c *Checkpointer) Latest(ctx context.Context) ([]byte, error) {
	_, msg, err := c.Store.LatestCheckpoint(ctx)
	return msg, err
}

// SignNow signs the head now and returns the note: POST
// /v1/audit/checkpoint.
func (c *Checkpointer) SignNow(ctx context.Context) ([]byte, error) {
	s, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return s.Note, nil
}
