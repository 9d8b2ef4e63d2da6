package pairing

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/storage"
)

const testDeviceID = "AAAQEAYEAUDAOCAJ"

func catalogAt(t testing.TB, path string) *storage.Catalog {
	t.Helper()
	c, err := storage.OpenCatalog(path, storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is a manager on a catalog that the test can close and reopen,
// as a restart would. The tests whose logic is time (windows, exchanges,
// invitations, credentials that expire) build it inside a synctest
// bubble, where time.Sleep moves the bubble's clock at once.
type fixture struct {
	t    *testing.T
	path string
	opts Options
	cat  *storage.Catalog
	m    *Manager
}

func newFixture(t *testing.T) *fixture { return newFixtureIn(t, t.TempDir()) }

// newFixtureIn puts the catalog in dir.
func newFixtureIn(t *testing.T, dir string) *fixture {
	return newFixtureWith(t, dir, Options{DeviceID: testDeviceID})
}

// newFixtureWith opens the manager with opts.
func newFixtureWith(t *testing.T, dir string, opts Options) *fixture {
	f := &fixture{t: t, path: filepath.Join(dir, "catalog.db"), opts: opts}
	f.open()
	t.Cleanup(func() {
		if err := f.cat.Check(); err != nil {
			t.Errorf("catalog: %v", err)
		}
		f.cat.Close()
	})
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	f.cat = catalogAt(f.t, f.path)
	m, err := Open(f.cat, f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.m = m
}

func (f *fixture) restart() {
	f.t.Helper()
	f.cat.Close()
	f.open()
}

// The owner's phone, and the n-th address of a stranger's (an attacker
// on the LAN has as many as it likes).
var phone = netip.MustParseAddr("192.168.1.10")

func stranger(n int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0xbe, 0xef, 12: byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// pair runs a whole exchange with the given secret from the phone.
func (f *fixture) pair(secret []byte, name, invite string) (User, string, error) {
	return f.pairFrom(phone, secret, name, invite)
}

// pairFrom runs a whole exchange from the address from.
func (f *fixture) pairFrom(from netip.Addr, secret []byte, name, invite string) (User, string, error) {
	nonce, err := f.m.Start(invite, from)
	if err != nil {
		return User{}, "", err
	}
	return f.m.Finish(FinishRequest{Nonce: nonce, Name: name, Proof: Proof(secret, testDeviceID, nonce, name), InviteID: invite, From: from})
}

func (f *fixture) setupSecret() []byte {
	p := f.m.SetupPayload(netip.AddrPort{})
	return p.Secret[:]
}

func TestFirstPairingMakesOwnerAndRotatesSecret(t *testing.T) {
	f := newFixture(t)
	changes := 0
	f.m.OnChange(func() { changes++ })
	if open, _, _ := f.m.Window(); !open || f.m.Paired() {
		t.Fatal("a new device must be unpaired with pairing open")
	}
	old := f.setupSecret()
	u, token, err := f.pair(old, "Ana's phone", "")
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != Owner || u.Name != "Ana's phone" || !f.m.Paired() || changes != 1 {
		t.Fatalf("user %+v, paired %v, changes %d", u, f.m.Paired(), changes)
	}
	if got, err := f.m.Authenticate(token); err != nil || got.ID != u.ID {
		t.Fatalf("own credential: %v", err)
	}
	if string(f.setupSecret()) == string(old) {
		t.Fatal("the secret did not change after pairing")
	}
	if open, _, _ := f.m.Window(); open {
		t.Fatal("the window stayed open after the owner paired")
	}
	// The old secret, replayed in a new exchange, no longer works (and the
	// window is closed anyway).
	if _, _, err := f.pair(old, "again", ""); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("pairing with a closed window: %v", err)
	}
	// Survives restart.
	f.restart()
	if got, err := f.m.Authenticate(token); err != nil || got.Role != Owner {
		t.Fatalf("after restart: %v", err)
	}
}

// A replayed finish is refused and, carrying no live exchange, counts
// against nothing (it used to count).
func TestReplayedFinishIsRefusedNotCounted(t *testing.T) {
	f := newFixture(t)
	secret := f.setupSecret()
	nonce, _ := f.m.Start("", phone)
	req := FinishRequest{Nonce: nonce, Name: "phone", Proof: Proof(secret, testDeviceID, nonce, "phone"), From: phone}
	if _, _, err := f.m.Finish(req); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.Finish(req); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("replay: %v", err)
	}
	if w, l := f.m.Failures(); w != 0 || l != 0 {
		t.Fatalf("failures after a replay: window %d lifetime %d, want 0 0", w, l)
	}
	if n := len(f.m.Users()); n != 1 {
		t.Fatalf("%d users after a replay", n)
	}
}

// Exchanges do not exclude each other; each nonce expires, and serves
// only the address and invitation it was given for. None of the refusals
// counts.
func TestExchangesAreBoundToTheirClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		secret := f.setupSecret()
		mine, err := f.m.Start("", phone)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Start("", stranger(1)); err != nil {
			t.Fatalf("a second exchange at the same time: %v", err)
		}
		finish := func(nonce []byte, from netip.Addr, invite string) error {
			_, _, err := f.m.Finish(FinishRequest{Nonce: nonce, Name: "x", Proof: Proof(secret, testDeviceID, nonce, "x"), InviteID: invite, From: from})
			return err
		}
		if err := finish(mine, stranger(1), ""); !errors.Is(err, ErrBadNonce) {
			t.Fatalf("the phone's nonce from another address: %v", err)
		}
		if err := finish(mine, netip.MustParseAddr("::ffff:192.168.1.11"), ""); !errors.Is(err, ErrBadNonce) {
			t.Fatalf("the phone's nonce from a neighbour: %v", err)
		}
		if err := finish(mine, phone, "0011223344556677"); !errors.Is(err, ErrBadNonce) {
			t.Fatalf("the phone's setup nonce for an invitation: %v", err)
		}
		// A proof after the exchange expired is refused.
		time.Sleep(31 * time.Second)
		if err := finish(mine, phone, ""); !errors.Is(err, ErrBadNonce) {
			t.Fatalf("finishing an expired exchange: %v", err)
		}
		if w, l := f.m.Failures(); w != 0 || l != 0 {
			t.Fatalf("refusals counted: window %d lifetime %d", w, l)
		}
		// The same address written as IPv4-mapped IPv6 is the same client.
		nonce, _ := f.m.Start("", phone)
		if err := finish(nonce, netip.AddrFrom16(phone.As16()), ""); err != nil {
			t.Fatalf("the phone, IPv4-mapped: %v", err)
		}
	})
}

func TestWrongSecretCountsAndTwentyCloseTheWindow(t *testing.T) {
	f := newFixture(t)
	wrong := make([]byte, SecretSize)
	for i := 1; i <= 19; i++ {
		if _, _, err := f.pairFrom(stranger(i), wrong, "mallory", ""); !errors.Is(err, ErrBadProof) || errors.Is(err, ErrWindowClosed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := f.pairFrom(stranger(20), wrong, "mallory", "")
	if !errors.Is(err, ErrBadProof) || !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("20th failure: %v", err)
	}
	if _, err := f.m.Start("", phone); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("after 20 failures: %v", err)
	}
	// The closed window and the counters survive a restart.
	f.restart()
	if _, err := f.m.Start("", phone); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("after restart: %v", err)
	}
	if w, l := f.m.Failures(); w != 20 || l != 20 {
		t.Fatalf("counters after restart: %d, %d", w, l)
	}
	// The pair button reopens it; the right secret then works.
	if err := f.m.OpenWindow(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.pair(f.setupSecret(), "owner", ""); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
}

func TestHundredLifetimeFailuresLockUntilReset(t *testing.T) {
	f := newFixture(t)
	wrong := make([]byte, SecretSize)
	for i := range 100 {
		if i%20 == 0 {
			f.m.OpenWindow()
		}
		if _, _, err := f.pairFrom(stranger(i), wrong, "mallory", ""); !errors.Is(err, ErrBadProof) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := f.m.OpenWindow(); !errors.Is(err, ErrLocked) {
		t.Fatalf("opening the window when locked: %v", err)
	}
	f.restart()
	if _, _, err := f.pair(f.setupSecret(), "owner", ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("pairing when locked, after restart: %v", err)
	}
	if _, _, locked := f.m.Window(); !locked {
		t.Fatal("Window does not report the lock")
	}
	if _, err := f.m.Start("", phone); !errors.Is(err, ErrLocked) {
		t.Fatalf("starting setup pairing when locked: %v", err)
	}
	if err := f.m.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.pair(f.setupSecret(), "owner", ""); err != nil {
		t.Fatalf("after factory reset: %v", err)
	}
}

func TestTimedWindowAndLaterSetupPairingIsViewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.pair(f.setupSecret(), "owner", "")
		opened := time.Now()
		if err := f.m.OpenWindow(); err != nil {
			t.Fatal(err)
		}
		_, until, _ := f.m.Window()
		if want := opened.Add(15 * time.Minute); !until.Equal(want) {
			t.Fatalf("window until %v, want %v", until, want)
		}
		time.Sleep(16 * time.Minute)
		if _, err := f.m.Start("", phone); !errors.Is(err, ErrWindowClosed) {
			t.Fatalf("16 minutes later: %v", err)
		}
		f.m.OpenWindow()
		f.restart() // an open window survives a restart
		u, _, err := f.pair(f.setupSecret(), "tablet", "")
		if err != nil || u.Role != Viewer {
			t.Fatalf("second setup pairing: %v, role %v", err, u.Role)
		}
	})
}

func TestInvitations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		owner, _, _ := f.pair(f.setupSecret(), "owner", "")
		inv, err := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID, Access: time.Hour}, netip.MustParseAddrPort("10.0.0.2:8443"))
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(inv.String())
		if err != nil || back.Kind != Invite || back.Role != Viewer || back.Host.Port() != 8443 {
			t.Fatalf("invite payload: %+v %v", back, err)
		}
		id := InviteID(inv.Secret[:])
		// The window is closed, but an invitation needs none.
		u, token, err := f.pair(inv.Secret[:], "guest", id)
		if err != nil || u.Role != Viewer {
			t.Fatalf("invited pairing: %v %v", err, u.Role)
		}
		if _, _, err := f.pair(inv.Secret[:], "guest2", id); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("reusing an invitation: %v", err)
		}
		time.Sleep(2 * time.Hour)
		if _, err := f.m.Authenticate(token); !errors.Is(err, ErrExpired) {
			t.Fatalf("guest access after it expired: %v", err)
		}
		old, _ := f.m.Invite(InviteOptions{Role: Owner, Valid: time.Minute}, netip.AddrPort{})
		time.Sleep(2 * time.Minute)
		if _, err := f.m.Start(InviteID(old.Secret[:]), phone); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("expired invitation: %v", err)
		}
		// A wrong secret for a real invitation counts as a failure.
		live, _ := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
		if _, _, err := f.pair(make([]byte, SecretSize), "x", InviteID(live.Secret[:])); !errors.Is(err, ErrBadProof) {
			t.Fatalf("wrong invitation secret: %v", err)
		}
	})
}

func TestAuthenticateRefusals(t *testing.T) {
	f := newFixture(t)
	_, token, _ := f.pair(f.setupSecret(), "owner", "")
	cases := map[string]struct {
		token string
		want  error
	}{
		"none":           {"", ErrNoCredential},
		"garbage":        {"hello", ErrUnknownCredential},
		"another device": {"camd1.BBBBBBBBBBBBBBBB.abc", ErrOtherDevice},
		"altered":        {token[:len(token)-1] + "x", ErrUnknownCredential},
	}
	for name, c := range cases {
		if _, err := f.m.Authenticate(c.token); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestRevokeAndLastOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		owner, ownerToken, _ := f.pair(f.setupSecret(), "owner", "")
		time.Sleep(time.Second)
		inv, _ := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
		viewer, viewerToken, err := f.pair(inv.Secret[:], "viewer", InviteID(inv.Secret[:]))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.Rename(viewer.ID, "kitchen tablet"); err != nil {
			t.Fatal(err)
		}
		if err := f.m.Rename(viewer.ID, ""); !errors.Is(err, ErrBadName) {
			t.Fatalf("empty name: %v", err)
		}
		if us := f.m.Users(); len(us) != 2 || us[1].Name != "kitchen tablet" || us[0].TokenHash != nil {
			t.Fatalf("users: %+v", us)
		}
		if err := f.m.Revoke(viewer.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Authenticate(viewerToken); !errors.Is(err, ErrUnknownCredential) {
			t.Fatalf("revoked credential: %v", err)
		}
		if err := f.m.Revoke(viewer.ID); !errors.Is(err, ErrNoUser) {
			t.Fatalf("revoking twice: %v", err)
		}
		// Another viewer, then the last owner goes: everyone goes, pairing
		// reopens.
		inv2, _ := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
		_, v2Token, _ := f.pair(inv2.Secret[:], "v2", InviteID(inv2.Secret[:]))
		if err := f.m.Revoke(owner.ID); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{ownerToken, v2Token} {
			if _, err := f.m.Authenticate(tok); err == nil {
				t.Fatal("a credential survived removing the last owner")
			}
		}
		f.restart()
		if f.m.Paired() || len(f.m.Users()) != 0 {
			t.Fatal("users left after removing the last owner")
		}
		if open, _, _ := f.m.Window(); !open {
			t.Fatal("pairing did not reopen")
		}
	})
}

func TestBadNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		for _, name := range []string{"", string(make([]byte, 65)), "tab\tname", "\xff\xfe"} {
			if _, _, err := f.pair(f.setupSecret(), name, ""); !errors.Is(err, ErrBadName) {
				t.Errorf("name %q: %v", name, err)
			}
			time.Sleep(time.Minute) // let the exchange expire
		}
		if w, l := f.m.Failures(); w != 0 || l != 0 {
			t.Fatalf("bad names counted: %d %d", w, l)
		}
	})
}

// TestReadersDuringChanges checks credentials from several goroutines
// while users are renamed, invited and revoked (run it with -race): a
// check sees the user as it was before a change or after it, never in
// between.
func TestReadersDuringChanges(t *testing.T) {
	f := newFixture(t)
	owner, token, err := f.pair(f.setupSecret(), "owner", "")
	if err != nil {
		t.Fatal(err)
	}
	stop := background(2, func() bool {
		u, err := f.m.Authenticate(token)
		if err != nil || u.ID != owner.ID || !strings.HasPrefix(u.Name, "owner") {
			t.Errorf("owner's credential during changes: %+v, %v", u, err)
			return false
		}
		f.m.Users()
		f.m.Window()
		return true
	})
	for i := range 5 {
		if err := f.m.Rename(owner.ID, fmt.Sprintf("owner %d", i)); err != nil {
			t.Fatal(err)
		}
		inv, err := f.m.Invite(InviteOptions{Role: Viewer}, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := f.pair(inv.Secret[:], "viewer", InviteID(inv.Secret[:]))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.Revoke(v.ID); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if us := f.m.Users(); len(us) != 1 || us[0].Name != "owner 4" {
		t.Fatalf("users after the changes: %+v", us)
	}
}

// background calls f over and over on n goroutines, each until f returns
// false or stop is called; stop waits for them.
func background(n int, f func() bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if !f() {
					return
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// Notify hears of each change of who may use the camera once it is
// stored, with no credential; failed changes say nothing.
func TestNotifyTellsEachChange(t *testing.T) {
	var heard []Event
	f := newFixtureWith(t, t.TempDir(), Options{DeviceID: testDeviceID, Notify: func(e Event) { heard = append(heard, e) }})
	owner, _, _ := f.pair(f.setupSecret(), "owner", "")
	inv, _ := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
	invID := InviteID(inv.Secret[:])
	viewer, _, err := f.pair(inv.Secret[:], "viewer", invID)
	if err != nil {
		t.Fatal(err)
	}
	f.m.Rename(viewer.ID, "tablet")
	f.m.Rename(viewer.ID, "")       // refused
	f.m.Revoke("nobody")            // refused
	f.m.CancelInvitation("nothing") // refused
	other, _ := f.m.Invite(InviteOptions{Role: Owner, By: owner.ID}, netip.AddrPort{})
	f.m.CancelInvitation(InviteID(other.Secret[:]))
	f.m.Revoke(owner.ID) // the last owner: the viewer goes too
	want := []Event{
		{Kind: EventPaired, User: User{ID: owner.ID, Name: "owner", Role: Owner}},
		{Kind: EventInvited, Invitation: invID, Role: Viewer, By: owner.ID},
		{Kind: EventPaired, User: User{ID: viewer.ID, Name: "viewer", Role: Viewer}, Invitation: invID, By: owner.ID},
		{Kind: EventRenamed, User: User{ID: viewer.ID, Name: "tablet", Role: Viewer}, OldName: "viewer"},
		{Kind: EventInvited, Invitation: InviteID(other.Secret[:]), Role: Owner, By: owner.ID},
		{Kind: EventInvitationCancelled, Invitation: InviteID(other.Secret[:]), Role: Owner, By: owner.ID},
		{Kind: EventRevoked, User: User{ID: owner.ID, Name: "owner", Role: Owner}},
		{Kind: EventRevoked, User: User{ID: viewer.ID, Name: "tablet", Role: Viewer}, Reason: "the last owner was revoked"},
	}
	if len(heard) != len(want) {
		t.Fatalf("heard %d events: %+v", len(heard), heard)
	}
	for i, w := range want {
		h := heard[i]
		if h.User.TokenHash != nil {
			t.Errorf("event %d carries a credential", i)
		}
		if (w.Kind == EventInvited || w.Kind == EventInvitationCancelled) != !h.Expires.IsZero() {
			t.Errorf("event %d expires %v", i, h.Expires)
		}
		h.User.TokenHash, h.User.Created, h.Expires = nil, time.Time{}, time.Time{}
		if fmt.Sprint(h) != fmt.Sprint(w) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, h, w)
		}
	}
}
