package metrics

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/camd-project/camd/internal/durable"
)

// TokenFile is the metrics token's SHA-256 in the data directory.
const TokenFile = "metrics-token"

// tokenPrefix marks metrics tokens apart from the users' credentials.
const tokenPrefix = "camd-metrics-"

// ErrNoToken: no metrics token was made, or it was revoked.
var ErrNoToken = errors.New("metrics: no metrics token")

// Tokens is the one metrics token of a device: made (and shown) once by
// the owner, kept as its SHA-256, revocable.
type Tokens struct {
	path string

	mu   sync.Mutex
	hash []byte // nil: none
}

// OpenTokens reads the token's hash kept in the data directory dir.
func OpenTokens(dir string) (*Tokens, error) {
	t := &Tokens{path: filepath.Join(dir, TokenFile)}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	h, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("metrics: %s is damaged", t.path)
	}
	t.hash = h
	return t, nil
}

// Create makes a new token, replacing the one before, and returns it:
// it is not kept, so this is the only time it can be shown.
func (t *Tokens) Create() (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	tok := tokenPrefix + hex.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := durable.WriteFile(t.path, []byte(hex.EncodeToString(h[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	t.hash = h[:]
	return tok, nil
}

// Revoke forgets the token.
func (t *Tokens) Revoke() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hash == nil {
		return ErrNoToken
	}
	if err := os.Remove(t.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("metrics: %w", err)
	}
	durable.SyncDir(filepath.Dir(t.path))
	t.hash = nil
	return nil
}

// Check reports whether tok is the metrics token.
func (t *Tokens) Check(tok string) bool {
	if !strings.HasPrefix(tok, tokenPrefix) {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hash != nil && subtle.ConstantTimeCompare(h[:], t.hash) == 1
}

// Exists reports whether a token was made and not revoked.
func (t *Tokens) Exists() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hash != nil
}
