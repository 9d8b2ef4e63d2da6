package pairing

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/faultfs"
)

// The tests in this file put the catalog on a card that fails or stalls:
// a FUSE file system (package faultfs) whose writes and fsyncs return EIO
// or wait, on demand.

// TestFaultFSServer is the FUSE server that faultfs runs in a child
// process.
func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// failWrites makes every write and fsync of the catalog fail with EIO.
var failWrites = faultfs.Fault{Ops: faultfs.Write | faultfs.Fsync, Err: syscall.EIO, Files: "catalog.db"}

// observed is what the manager's callers can see of it.
type observed struct {
	users, window, tokens, invitations string
	failures                           [2]int
	discriminator                      uint16
	secret                             [SecretSize]byte
}

func (f *fixture) observe(tokens ...string) observed {
	f.t.Helper()
	users, err := json.Marshal(f.m.Users())
	if err != nil {
		f.t.Fatal(err)
	}
	var o observed
	o.users = string(users)
	invitations, err := json.Marshal(f.m.Invitations())
	if err != nil {
		f.t.Fatal(err)
	}
	o.invitations = string(invitations)
	open, until, locked := f.m.Window()
	o.window = fmt.Sprintf("open %v until %s locked %v paired %v", open, until.UTC().Format(time.RFC3339Nano), locked, f.m.Paired())
	for _, tok := range tokens {
		u, err := f.m.Authenticate(tok)
		o.tokens += fmt.Sprintf("[%s %v %v]", u.ID, u.Name, err)
	}
	o.failures[0], o.failures[1] = f.m.Failures()
	o.discriminator = f.m.Discriminator()
	o.secret = f.m.SetupPayload(netip.AddrPort{}).Secret
	return o
}

// TestFailedCommitChangesNothing makes each change's commit fail (the
// card returns EIO): the change returns the error, and the manager shows
// what it showed before, as does the catalog opened again (memory and
// disk agree).
func TestFailedCommitChangesNothing(t *testing.T) {
	card := faultfs.MountTemp(t)
	cases := []struct {
		name string
		do   func(f *fixture, s *scene) error
	}{
		{"open window", func(f *fixture, _ *scene) error { return f.m.OpenWindow() }},
		{"wrong proof", func(f *fixture, _ *scene) error {
			_, _, err := f.pairFrom(stranger(2), make([]byte, SecretSize), "mallory", "")
			return err
		}},
		{"setup pairing", func(f *fixture, _ *scene) error {
			_, _, err := f.pair(f.setupSecret(), "tablet", "")
			return err
		}},
		{"invited pairing", func(f *fixture, s *scene) error {
			_, _, err := f.pair(s.invite.Secret[:], "guest", InviteID(s.invite.Secret[:]))
			return err
		}},
		{"invite", func(f *fixture, _ *scene) error {
			_, err := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
			return err
		}},
		{"cancel an invitation", func(f *fixture, s *scene) error { return f.m.CancelInvitation(InviteID(s.invite.Secret[:])) }},
		{"rename", func(f *fixture, s *scene) error { return f.m.Rename(s.viewer.ID, "kitchen") }},
		{"revoke", func(f *fixture, s *scene) error { return f.m.Revoke(s.viewer.ID) }},
		{"revoke the last owner", func(f *fixture, s *scene) error { return f.m.Revoke(s.owner.ID) }},
		{"reset", func(f *fixture, _ *scene) error { return f.m.Reset() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixtureIn(t, filepath.Join(card.Dir, t.Name()))
			s := newScene(f)
			before := f.observe(s.tokens...)
			setFaults(t, card, failWrites)
			err := c.do(f, s)
			setFaults(t, card)
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("a commit on a failing card: %v, want EIO", err)
			}
			if got := f.observe(s.tokens...); got != before {
				t.Errorf("the failed commit changed the manager:\n got %+v\nwant %+v", got, before)
			}
			f.restart()
			if got := f.observe(s.tokens...); got != before {
				t.Errorf("the catalog disagrees with the manager:\n got %+v\nwant %+v", got, before)
			}
		})
	}
}

// scene is a paired device in the middle of its life: an owner, an
// invited viewer, the window open with a failed attempt (a stranger's
// wrong proof) counted, and an invitation not used yet.
type scene struct {
	owner, viewer User
	tokens        []string
	invite        Payload
}

func newScene(f *fixture) *scene {
	f.t.Helper()
	var s scene
	owner, ownerToken, err := f.pair(f.setupSecret(), "owner", "")
	if err != nil {
		f.t.Fatal(err)
	}
	inv, err := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
	if err != nil {
		f.t.Fatal(err)
	}
	viewer, viewerToken, err := f.pair(inv.Secret[:], "viewer", InviteID(inv.Secret[:]))
	if err != nil {
		f.t.Fatal(err)
	}
	if s.invite, err = f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.m.OpenWindow(); err != nil {
		f.t.Fatal(err)
	}
	if _, _, err := f.pairFrom(stranger(1), make([]byte, SecretSize), "mallory", ""); !errors.Is(err, ErrBadProof) {
		f.t.Fatal(err)
	}
	s.owner, s.viewer, s.tokens = owner, viewer, []string{ownerToken, viewerToken}
	return &s
}

// TestReadersDoNotWaitForCommits stalls a commit in its fsync: credential
// checks and the other readers answer meanwhile, from the state before
// the commit, and see its change once it is committed.
func TestReadersDoNotWaitForCommits(t *testing.T) {
	card := faultfs.MountTemp(t)
	f := newFixtureIn(t, card.Dir)
	owner, token, err := f.pair(f.setupSecret(), "owner", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.OpenWindow(); err != nil {
		t.Fatal(err)
	}
	nonce, err := f.m.Start("", stranger(1))
	if err != nil {
		t.Fatal(err)
	}
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Fsync, Files: "catalog.db", Delay: time.Hour})
	committed := make(chan error, 1)
	go func() {
		_, _, err := f.m.Finish(FinishRequest{Nonce: nonce, Name: "mallory", From: stranger(1)})
		committed <- err
	}()
	defer func() {
		setFaults(t, card) // releases the fsync
		if err := <-committed; !errors.Is(err, ErrBadProof) {
			t.Errorf("the failed attempt: %v", err)
		}
		if w, l := f.m.Failures(); w != 1 || l != 1 {
			t.Errorf("failures after the commit: window %d lifetime %d, want 1 1", w, l)
		}
	}()
	for card.Hits(faultfs.Fsync) == 0 { // the commit is not in its fsync yet
		select {
		case err := <-committed:
			t.Fatalf("the failed attempt returned without an fsync: %v", err)
		default:
		}
	}

	read := make(chan error, 1)
	go func() {
		u, err := f.m.Authenticate(token)
		if err == nil && u.ID != owner.ID {
			err = fmt.Errorf("authenticated as %s, want %s", u.ID, owner.ID)
		}
		if w, l := f.m.Failures(); err == nil && (w != 0 || l != 0) {
			err = fmt.Errorf("failures %d %d before the commit, want 0 0", w, l)
		}
		f.m.Paired()
		f.m.Window()
		f.m.Users()
		f.m.Discriminator()
		f.m.SetupPayload(netip.AddrPort{})
		read <- err
	}()
	// A check takes microseconds; the commit waits for an hour.
	select {
	case err := <-read:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the credential check waited for the commit")
	}
}

// setFaults puts faults in force on the card (none: heals it).
func setFaults(t *testing.T, card *faultfs.FS, faults ...faultfs.Fault) {
	t.Helper()
	err := card.Heal()
	if err == nil && len(faults) > 0 {
		err = card.Set(faults...)
	}
	if err != nil {
		t.Fatal(err)
	}
}
