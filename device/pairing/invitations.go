package pairing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// Invitation validity: the default, and the longest an owner may ask for.
const (
	DefaultInviteValid = 24 * time.Hour
	MaxInviteValid     = 7 * 24 * time.Hour
)

// invite is an invitation as the catalog keeps it, under invitePrefix +
// its ID.
type invite struct {
	Secret  []byte    `json:"secret"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created,omitzero"`
	Expires time.Time `json:"expires"`
	By      string    `json:"by"`
	// Access is how long the invited user's credential lasts (0: until
	// revoked).
	Access time.Duration `json:"access,omitempty"`
}

// usable reports whether inv can still be used at now in the state s:
// not expired, and its maker (if a user made it) still an owner whose
// access has not ended.
func (inv *invite) usable(s *snapshot, now time.Time) bool {
	if !now.Before(inv.Expires) {
		return false
	}
	if inv.By == "" {
		return true
	}
	u := s.users[inv.By]
	return u != nil && u.Role == Owner && (u.Expires.IsZero() || now.Before(u.Expires))
}

// Invitation is an invitation not used yet, as an owner sees it: never
// its secret.
type Invitation struct {
	ID   string `json:"id"`
	Role Role   `json:"role"`
	// By is the user ID of the owner who made it, ByName that user's name.
	By      string    `json:"by,omitempty"`
	ByName  string    `json:"by_name,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Expires time.Time `json:"expires"`
	// Access limits the invited user's access (0: until revoked). In
	// JSON it is a Go duration ("2h0m0s"), absent when 0.
	Access time.Duration `json:"-"`
}

// invitationJSON is an Invitation in JSON: its fields (plainInvitation
// has no JSON methods) and Access as a Go duration.
type invitationJSON struct {
	*plainInvitation
	Access string `json:"access,omitempty"`
}

type plainInvitation Invitation

func (i Invitation) MarshalJSON() ([]byte, error) {
	j := invitationJSON{plainInvitation: (*plainInvitation)(&i)}
	if i.Access > 0 {
		j.Access = i.Access.String()
	}
	return json.Marshal(j)
}

func (i *Invitation) UnmarshalJSON(b []byte) error {
	j := invitationJSON{plainInvitation: (*plainInvitation)(i)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	i.Access = 0
	if j.Access != "" {
		d, err := time.ParseDuration(j.Access)
		if err != nil {
			return fmt.Errorf("pairing: invitation access: %w", err)
		}
		i.Access = d
	}
	return nil
}

// InviteOptions describe an invitation.
type InviteOptions struct {
	Role Role
	// Valid is how long the invitation can be used: 0 means
	// DefaultInviteValid; more than MaxInviteValid is refused.
	Valid time.Duration
	// Access limits the invited user's access (0: until revoked).
	Access time.Duration
	// By is the inviting owner's user ID. The invitation dies with that
	// owner (revoked, access ended, no longer owner).
	By string
}

// check returns opts with defaults, or a *fielderr.Error.
func (opts InviteOptions) check() (InviteOptions, error) {
	if opts.Role != Viewer && opts.Role != Owner {
		return opts, invalid("role", strconv.Quote(opts.Role.String()), `"viewer" or "owner"`, ErrInvalid)
	}
	if opts.Valid == 0 {
		opts.Valid = DefaultInviteValid
	}
	if opts.Valid < 0 || opts.Valid > MaxInviteValid {
		return opts, invalid("valid", strconv.Quote(opts.Valid.String()), fmt.Sprintf("more than 0 and at most %s (7 days), e.g. 24h", strings.TrimSuffix(MaxInviteValid.String(), "0m0s")), ErrInvalid)
	}
	if opts.Access < 0 {
		return opts, invalid("access", strconv.Quote(opts.Access.String()), "a positive duration, e.g. 2h, or none (until revoked)", ErrInvalid)
	}
	return opts, nil
}

// Invite makes a one-time invitation payload. Invitations need no
// window, and work while pairing with the setup code is locked: an owner
// made them. A value not allowed is a *fielderr.Error (ErrInvalid).
func (m *Manager) Invite(opts InviteOptions, host netip.AddrPort) (Payload, error) {
	opts, err := opts.check()
	if err != nil {
		return Payload{}, err
	}
	secret := random(SecretSize)
	now := time.Now()
	inv := invite{Secret: secret, Role: opts.Role, Created: now.UTC(), Expires: now.Add(opts.Valid).UTC(), By: opts.By, Access: opts.Access}
	b, _ := json.Marshal(inv)
	s, err := m.saveInvite(InviteID(secret), b, now)
	if err != nil {
		return Payload{}, err
	}
	m.notify(Event{Kind: EventInvited, Invitation: InviteID(secret), Role: opts.Role, By: opts.By, Expires: inv.Expires})
	p := Payload{Kind: Invite, Role: opts.Role, DeviceID: m.deviceID, Fingerprint: m.opts.Fingerprint, Discriminator: s.st.Discriminator, Host: host}
	copy(p.Secret[:], secret)
	return p, nil
}

// saveInvite stores an invitation (b) under id, with the invitations
// that can no longer be used at now gone, and returns the state it did
// so in.
func (m *Manager) saveInvite(id string, b []byte, now time.Time) (*snapshot, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	if err := m.cat.Update(func(tx *bbolt.Tx) error {
		// Invitations that can no longer be used go in the same commit,
		// so they do not pile up.
		dead := invitationKeys(tx, func(_ string, inv *invite) bool { return !inv.usable(s, now) })
		if err := deleteKeys(tx, dead); err != nil {
			return err
		}
		return tx.Bucket(storage.BucketPairing).Put([]byte(invitePrefix+id), b)
	}); err != nil {
		return nil, fmt.Errorf("pairing: saving invitation: %w", err)
	}
	return s, nil
}

// invitationKeys returns the catalog keys of the invitations for which keep
// returns true (a damaged record is always returned: it is of no use).
func invitationKeys(tx *bbolt.Tx, keep func(id string, inv *invite) bool) [][]byte {
	var keys [][]byte
	c := tx.Bucket(storage.BucketPairing).Cursor()
	prefix := []byte(invitePrefix)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var inv invite
		if json.Unmarshal(v, &inv) != nil || keep(string(k[len(prefix):]), &inv) {
			keys = append(keys, slices.Clone(k))
		}
	}
	return keys
}

func deleteKeys(tx *bbolt.Tx, keys [][]byte) error {
	b := tx.Bucket(storage.BucketPairing)
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// getInvite reads an invitation that can be used at now in the state s.
func (m *Manager) getInvite(s *snapshot, id string, now time.Time) (invite, error) {
	var inv invite
	var found bool
	m.cat.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(storage.BucketPairing).Get([]byte(invitePrefix + id)); v != nil {
			found = json.Unmarshal(v, &inv) == nil
		}
		return nil
	})
	if !found || !inv.usable(s, now) {
		return inv, ErrBadInvite
	}
	return inv, nil
}

// Invitations lists the invitations that can still be used, oldest
// first, without their secrets.
func (m *Manager) Invitations() []Invitation {
	s, now := m.cur.Load(), time.Now()
	list := []Invitation{}
	m.cat.View(func(tx *bbolt.Tx) error {
		invitationKeys(tx, func(id string, inv *invite) bool {
			if inv.usable(s, now) {
				i := Invitation{ID: id, Role: inv.Role, By: inv.By, Created: inv.Created, Expires: inv.Expires, Access: inv.Access}
				if u := s.users[inv.By]; u != nil {
					i.ByName = u.Name
				}
				list = append(list, i)
			}
			return false
		})
		return nil
	})
	slices.SortFunc(list, func(a, b Invitation) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// CancelInvitation deletes an invitation: it can no longer be used, and
// an exchange started with it fails. ErrNoInvite if there is none of
// that ID.
func (m *Manager) CancelInvitation(id string) error {
	inv, err := m.cancelInvitation(id)
	if err != nil {
		return err
	}
	m.log.Info("pairing: invitation cancelled", "invite", id)
	m.notify(Event{Kind: EventInvitationCancelled, Invitation: id, Role: inv.Role, By: inv.By, Expires: inv.Expires})
	return nil
}

// cancelInvitation is CancelInvitation under wmu: it returns the
// invitation deleted.
func (m *Manager) cancelInvitation(id string) (invite, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	k := []byte(invitePrefix + id)
	var inv invite
	found := false
	m.cat.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(storage.BucketPairing).Get(k)
		found = v != nil
		if found {
			json.Unmarshal(v, &inv) // a damaged one is cancelled all the same
		}
		return nil
	})
	if !found {
		return inv, ErrNoInvite
	}
	if err := m.cat.Update(func(tx *bbolt.Tx) error { return deleteKeys(tx, [][]byte{k}) }); err != nil {
		return inv, fmt.Errorf("pairing: cancelling invitation: %w", err)
	}
	return inv, nil
}
