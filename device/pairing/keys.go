package pairing

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// Stream keys are view-only credentials for standard clients (an NVR,
// Home Assistant, VLC, a WHEP player): an owner makes one for a user or a
// device, sees its secret once, and revokes it. A key is accepted as a
// WHEP bearer token, as RTSP digest credentials, as HTTP Basic on the
// snapshot and MJPEG URLs and (later) as an ONVIF WS-UsernameToken; never
// on a route that needs more than live view.
//
// The catalog never holds a key's secret: the secret is an HMAC of the
// key's ID and a per-key salt under a root key that lives in a file of its
// own in the data directory (Options.StreamKeyRoot). Digest
// authentication (RTSP's, ONVIF's PasswordDigest) needs the secret itself
// on the verifying side, so a hash alone could not serve them; deriving
// it keeps the catalog free of secrets all the same (docs/security.md,
// "Stream keys").

// ScopeView is the one scope a stream key has: live view (video, audio,
// snapshot, MJPEG). A key never has more.
const ScopeView = "view"

// MaxKeys bounds the stream keys a device keeps.
const MaxKeys = 64

// Errors of stream keys.
var (
	ErrNoKey = errors.New("pairing: no such stream key")
	// ErrKeyScope is a key used where it has no rights.
	ErrKeyScope = errors.New("pairing: a stream key opens only live view")
)

// keyPrefix is the catalog key of a stream key's record in the pairing
// bucket, before its ID.
const keyPrefix = "key:"

// tokenPrefix starts the bearer form of a stream key.
const tokenPrefix = "camdk1."

// Key is a stream key as an owner sees it: never its secret.
type Key struct {
	// ID is also the user name of the key in Basic, digest and
	// WS-UsernameToken credentials.
	ID string `json:"id"`
	// For is the name of whom or what the key is for.
	For string `json:"for"`
	// User is the ID of the user the key is for; empty for a device. The
	// key dies with that user.
	User  string `json:"user,omitempty"`
	Scope string `json:"scope"`
	// By is the owner who made the key; the key dies with that owner too.
	By      string    `json:"by,omitempty"`
	Created time.Time `json:"created"`
}

// keyRecord is a key as the catalog keeps it: the salt of its secret,
// not the secret.
type keyRecord struct {
	Key
	Salt []byte `json:"salt"`
}

// KeyCredential is a new key with its secret, shown once.
type KeyCredential struct {
	Key
	// Secret is the password: with ID as the user name for HTTP Basic,
	// RTSP digest and WS-UsernameToken.
	Secret string `json:"secret"`
	// Token is the bearer form: "camdk1." ID "." Secret.
	Token string `json:"token"`
}

// KeyOptions describe a new stream key.
type KeyOptions struct {
	// For names a paired user (by name or ID), whose key it becomes, or
	// else a device (an NVR, "home-assistant").
	For string
	// Scope must be ScopeView (empty means it).
	Scope string
	// By is the owner making it.
	By string
}

// KeySubject is the user ID that a key's sessions belong to: the session
// guard ends them when the key stops being valid.
func KeySubject(id string) string { return "key:" + id }

// deriveSecret is the secret of the key id with salt under root.
func deriveSecret(root []byte, deviceID, id string, salt []byte) string {
	mac := hmac.New(sha256.New, root)
	mac.Write([]byte("camd-stream-key-v1\x00" + deviceID + "\x00" + id + "\x00"))
	mac.Write(salt)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:24])
}

// keyUsable reports whether k may be used at now in s: the user it is for
// and the owner who made it are still there, and their access has not
// ended.
func keyUsable(s *snapshot, k *keyRecord, now time.Time) bool {
	live := func(id string, owner bool) bool {
		u := s.users[id]
		return u != nil && (!owner || u.Role == Owner) && (u.Expires.IsZero() || now.Before(u.Expires))
	}
	if k.User != "" && !live(k.User, false) {
		return false
	}
	return k.By == "" || live(k.By, true)
}

// keyUser is the user a key acts as: a viewer named after the key.
func keyUser(s *snapshot, k *keyRecord) User {
	u := User{ID: KeySubject(k.ID), Name: k.For, Role: Viewer, Created: k.Created, Key: k.ID}
	for _, id := range []string{k.User, k.By} {
		if o := s.users[id]; id != "" && o != nil && !o.Expires.IsZero() && (u.Expires.IsZero() || o.Expires.Before(u.Expires)) {
			u.Expires = o.Expires
		}
	}
	return u
}

// AddKey makes a stream key and returns it with its secret, which camd
// does not keep: show it once. A value not allowed is a *fielderr.Error
// (ErrInvalid).
func (m *Manager) AddKey(opts KeyOptions) (KeyCredential, error) {
	if opts.Scope == "" {
		opts.Scope = ScopeView
	}
	if opts.Scope != ScopeView {
		return KeyCredential{}, invalid("scope", strconv.Quote(opts.Scope), `"view" (a stream key never has more)`, ErrInvalid)
	}
	if CheckName(opts.For) != nil {
		v := opts.For
		if len(v) > 80 {
			v = v[:80] + "..."
		}
		return KeyCredential{}, invalid("for", strconv.QuoteToASCII(v), NameRule, ErrBadName)
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	if len(s.keys) >= MaxKeys {
		return KeyCredential{}, invalid("for", strconv.QuoteToASCII(opts.For), fmt.Sprintf("at most %d stream keys: revoke one first", MaxKeys), ErrInvalid)
	}
	rec := &keyRecord{Key: Key{ID: hex.EncodeToString(random(8)), For: opts.For, Scope: opts.Scope, By: opts.By, Created: time.Now().UTC()}, Salt: random(16)}
	if u := s.users[opts.For]; u != nil {
		rec.User = u.ID
	} else {
		for _, u := range s.users {
			if u.Name == opts.For {
				rec.User = u.ID
				break
			}
		}
	}
	next := s.with(s.st, nil)
	next.keys = cloneKeys(s.keys)
	next.keys[rec.ID] = rec
	b, _ := json.Marshal(rec)
	if err := m.publish(next, func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketPairing).Put([]byte(keyPrefix+rec.ID), b)
	}); err != nil {
		return KeyCredential{}, fmt.Errorf("pairing: saving the stream key: %w", err)
	}
	secret := deriveSecret(m.keyRoot, m.opts.DeviceID, rec.ID, rec.Salt)
	m.log.Info("pairing: stream key made", "key", rec.ID, "for", rec.For, "user", rec.User, "by", rec.By)
	return KeyCredential{Key: rec.Key, Secret: secret, Token: tokenPrefix + rec.ID + "." + secret}, nil
}

// Keys lists the stream keys that can be used, oldest first, without
// their secrets.
func (m *Manager) Keys() []Key {
	s, now := m.cur.Load(), time.Now()
	list := []Key{}
	for _, k := range s.keys {
		if keyUsable(s, k, now) {
			list = append(list, k.Key)
		}
	}
	slices.SortFunc(list, func(a, b Key) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// KeyUsers returns the user each usable stream key acts as (KeySubject
// IDs): the session guard keeps the sessions of these and ends the
// others'.
func (m *Manager) KeyUsers() []User {
	s, now := m.cur.Load(), time.Now()
	var us []User
	for _, k := range s.keys {
		if keyUsable(s, k, now) {
			us = append(us, keyUser(s, k))
		}
	}
	return us
}

// RevokeKey deletes a stream key: it stops working at once, and the
// session guard ends its sessions. ErrNoKey if there is none of that ID.
func (m *Manager) RevokeKey(id string) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	if s.keys[id] == nil {
		return ErrNoKey
	}
	next := s.with(s.st, nil)
	next.keys = cloneKeys(s.keys)
	delete(next.keys, id)
	if err := m.publish(next, func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketPairing).Delete([]byte(keyPrefix + id))
	}); err != nil {
		return fmt.Errorf("pairing: revoking the stream key: %w", err)
	}
	// The session guard's sweep ends its sessions.
	m.log.Info("pairing: stream key revoked", "key", id)
	return nil
}

// VerifyKey is the one check of a stream key, whatever the protocol: it
// finds the usable key id and hands its secret to proof, which says
// whether what the client sent proves it (a Basic password compared in
// constant time, an RTSP digest response, a WS-UsernameToken
// PasswordDigest). It returns the user the key acts as: a viewer whose ID
// is KeySubject(id) and whose Key is id. Errors: ErrNoCredential,
// ErrUnknownCredential (no such key, revoked, or the proof failed),
// ErrExpired (the access of its user or maker ended).
func (m *Manager) VerifyKey(id string, proof func(secret string) bool) (User, error) {
	if id == "" {
		return User{}, ErrNoCredential
	}
	s, now := m.cur.Load(), time.Now()
	k := s.keys[id]
	if k == nil || !proof(deriveSecret(m.keyRoot, m.opts.DeviceID, k.ID, k.Salt)) {
		return User{}, ErrUnknownCredential
	}
	if !keyUsable(s, k, now) {
		return User{}, ErrExpired
	}
	return keyUser(s, k), nil
}

// AuthenticateKey checks a key's ID and secret (HTTP Basic).
func (m *Manager) AuthenticateKey(id, secret string) (User, error) {
	return m.VerifyKey(id, func(want string) bool { return subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1 })
}

// authenticateKeyToken checks the bearer form of a key.
func (m *Manager) authenticateKeyToken(token string) (User, error) {
	id, secret, ok := strings.Cut(strings.TrimPrefix(token, tokenPrefix), ".")
	if !ok {
		return User{}, ErrUnknownCredential
	}
	return m.AuthenticateKey(id, secret)
}

func cloneKeys(keys map[string]*keyRecord) map[string]*keyRecord {
	c := make(map[string]*keyRecord, len(keys)+1)
	for id, k := range keys {
		c[id] = k
	}
	return c
}

// loadKeys reads the key records of the pairing bucket.
func loadKeys(tx *bbolt.Tx, keys map[string]*keyRecord) {
	c := tx.Bucket(storage.BucketPairing).Cursor()
	prefix := []byte(keyPrefix)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var rec keyRecord
		if json.Unmarshal(v, &rec) == nil && rec.ID == string(k[len(prefix):]) {
			keys[rec.ID] = &rec
		}
	}
}

// keysOf returns the IDs of the keys that die with the users gone.
func keysOf(keys map[string]*keyRecord, gone []string) []string {
	var ids []string
	for id, k := range keys {
		if slices.Contains(gone, k.User) || slices.Contains(gone, k.By) {
			ids = append(ids, id)
		}
	}
	return ids
}
