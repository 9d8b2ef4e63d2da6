package pairing

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/fielderr"
	"github.com/camd-project/camd/storage"
)

// The tests in this file are the points of issue #11 (docs/security.md)
// that the manager answers.

// txID is the ID of the catalog's last committed transaction: it grows
// with every commit.
func txID(t testing.TB, cat *storage.Catalog) int {
	t.Helper()
	var id int
	if err := cat.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGarbageFinishWritesNothing floods the manager with finish requests
// that carry no live exchange, from many addresses: random and malformed
// nonces, nonces given to another address or for another invitation,
// expired and used ones, and starts besides. None is counted, delayed or
// written (the catalog's file and its last transaction are unchanged),
// and pairing, invitations and the window work afterwards.
func TestGarbageFinishWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		secret := f.setupSecret()
		expired, _ := f.m.Start("", stranger(0))
		time.Sleep(31 * time.Second)
		used, _ := f.m.Start("", stranger(0))
		if _, _, err := f.m.Finish(FinishRequest{Nonce: used, Name: "m", Proof: []byte("x"), From: stranger(0)}); !errors.Is(err, ErrBadProof) {
			t.Fatal(err)
		}
		time.Sleep(time.Hour) // the stranger's delay is forgotten
		f.m.OpenWindow()      // and its failure with it
		if w, _ := f.m.Failures(); w != 0 {
			t.Fatal(w)
		}

		tx := txID(t, f.cat)
		file, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10_000 {
			from := stranger(i)
			var nonce []byte
			invite := ""
			switch i % 7 {
			case 0:
				nonce = random(nonceSize)
			case 1:
				nonce = random(i % 64)
			case 2: // given to another address
				nonce, _ = f.m.Start("", stranger(i+1))
			case 3: // for the setup code, sent with an invitation's ID
				nonce, _ = f.m.Start("", from)
				invite = "0011223344556677"
			case 4:
				nonce = expired
			case 5:
				nonce = used
			case 6: // well formed, but not sealed by this device
				nonce = mintNonce(random(nonceKeySize), from, "", time.Now().Add(time.Minute))
			}
			_, _, err := f.m.Finish(FinishRequest{Nonce: nonce, Name: "mallory", Proof: Proof(secret, testDeviceID, nonce, "mallory"), InviteID: invite, From: from})
			if !errors.Is(err, ErrBadNonce) {
				t.Fatalf("garbage %d: %v", i, err)
			}
		}
		if got := txID(t, f.cat); got != tx {
			t.Errorf("%d commits during the garbage", got-tx)
		}
		if after, _ := os.ReadFile(f.path); !bytes.Equal(after, file) {
			t.Error("the catalog's file changed during the garbage")
		}
		if w, l := f.m.Failures(); w != 0 || l != 1 {
			t.Errorf("failures after the garbage: window %d lifetime %d, want 0 1", w, l)
		}
		if n := f.m.throttle.tracked(); n != 0 {
			t.Errorf("the garbage put %d addresses in the throttle", n)
		}

		// Everything still works, for the owner and for the strangers'
		// addresses alike.
		owner, _, err := f.pairFrom(stranger(3), f.setupSecret(), "owner", "")
		if err != nil {
			t.Fatalf("pairing after the garbage: %v", err)
		}
		inv, err := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.pair(inv.Secret[:], "guest", InviteID(inv.Secret[:])); err != nil {
			t.Fatalf("an invitation after the garbage: %v", err)
		}
		if err := f.m.OpenWindow(); err != nil {
			t.Fatalf("opening the window after the garbage: %v", err)
		}
	})
}

// TestStrangerCannotHoldPairing: a stranger starting exchanges again and
// again, from one address or from a thousand, does not stop the owner
// from pairing, with the setup code or an invitation. (Pairing used to
// allow one exchange at a time, for 30 s: a stranger who re-armed it
// kept everyone else out.)
func TestStrangerCannotHoldPairing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for i := 0; ; i++ {
				for n := range 1000 {
					f.m.Start("", stranger(n))
				}
				select {
				case <-done:
					return
				case <-time.After(2 * time.Second):
				}
			}
		}()
		time.Sleep(time.Second)
		nonce, err := f.m.Start("", phone)
		if err != nil {
			t.Fatalf("the owner starting while a stranger re-arms: %v", err)
		}
		time.Sleep(5 * time.Second) // the owner is slower than the stranger
		owner, _, err := f.m.Finish(FinishRequest{Nonce: nonce, Name: "owner", Proof: Proof(f.setupSecret(), testDeviceID, nonce, "owner"), From: phone})
		if err != nil {
			t.Fatalf("the owner pairing while a stranger re-arms: %v", err)
		}
		inv, _ := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
		if _, _, err := f.pairFrom(netip.MustParseAddr("192.168.1.30"), inv.Secret[:], "tablet", InviteID(inv.Secret[:])); err != nil {
			t.Fatalf("an invited pairing while a stranger re-arms: %v", err)
		}
		if w, l := f.m.Failures(); w != 0 || l != 0 {
			t.Fatalf("failures: %d %d", w, l)
		}
	})
}

// TestFailuresAreDelayedPerAddress: a wrong proof delays the address it
// came from, 1 s, then 2 s, 4 s, ... up to 5 min; other addresses are not
// delayed; the delay is forgotten 5 min after it ended.
func TestFailuresAreDelayedPerAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		mallory := stranger(7)
		wrong := make([]byte, SecretSize)
		for i, want := range []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300} {
			want *= time.Second
			if _, _, err := f.pairFrom(mallory, wrong, "mallory", ""); !errors.Is(err, ErrBadProof) {
				t.Fatalf("attempt %d: %v", i, err)
			}
			_, err := f.m.Start("", mallory)
			if after, ok := RetryAfter(err); !ok || after != want || !errors.Is(err, ErrRetryLater) {
				t.Fatalf("after failure %d: %v (retry after %v), want a wait of %v", i+1, err, after, want)
			}
			// Nor can it finish an exchange started before.
			_, _, err = f.m.Finish(FinishRequest{Nonce: random(nonceSize), Name: "m", From: mallory})
			if !errors.Is(err, ErrRetryLater) {
				t.Fatalf("finish during the delay: %v", err)
			}
			// The owner is not delayed.
			if _, err := f.m.Start("", phone); err != nil {
				t.Fatalf("the owner during mallory's delay: %v", err)
			}
			time.Sleep(want - time.Millisecond)
			if _, err := f.m.Start("", mallory); !errors.Is(err, ErrRetryLater) {
				t.Fatalf("just before the delay ended: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
		if n := f.m.throttle.tracked(); n != 1 {
			t.Fatalf("throttle holds %d addresses, want 1", n)
		}
		time.Sleep(5*time.Minute + time.Second)
		if _, err := f.m.Start("", mallory); err != nil {
			t.Fatalf("after the delay was forgotten: %v", err)
		}
		if n := f.m.throttle.tracked(); n != 0 {
			t.Fatalf("throttle holds %d addresses after they were forgotten", n)
		}
		// Forgotten means the next failure waits 1 s again.
		f.pairFrom(mallory, wrong, "mallory", "")
		if after, _ := RetryAfter(startErr(f, mallory)); after != time.Second {
			t.Fatalf("first delay after forgetting: %v", after)
		}
	})
}

func startErr(f *fixture, from netip.Addr) error {
	_, err := f.m.Start("", from)
	return err
}

// TestThrottleIsBounded: the delays of at most FailureAddresses
// addresses are kept.
func TestThrottleIsBounded(t *testing.T) {
	f := newFixtureWith(t, t.TempDir(), Options{DeviceID: testDeviceID, FailureAddresses: 8, WindowFailures: 1000, LifetimeFailures: 1000})
	m := f.m
	for i := range 50 {
		if _, _, err := f.pairFrom(stranger(i), make([]byte, SecretSize), "m", ""); !errors.Is(err, ErrBadProof) {
			t.Fatal(err)
		}
		if n := m.throttle.tracked(); n > 8 {
			t.Fatalf("%d addresses tracked, limit 8", n)
		}
	}
	// The newest stay.
	if err := startErr(f, stranger(49)); !errors.Is(err, ErrRetryLater) {
		t.Fatalf("the latest address: %v", err)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Millisecond:                 time.Second,
		time.Second:                      time.Second,
		1500 * time.Millisecond:          2 * time.Second,
		5*time.Minute - time.Nanosecond:  5 * time.Minute,
		5*time.Minute + time.Microsecond: 5*time.Minute + time.Second,
	} {
		if got, ok := RetryAfter(&RetryError{After: in}); !ok || got != want {
			t.Errorf("%v: %v, want %v", in, got, want)
		}
	}
	if _, ok := RetryAfter(ErrBadProof); ok {
		t.Error("RetryAfter of another error")
	}
}

// TestInvitationsListAndCancel: an owner sees the invitations not used
// yet (never their secrets) and can cancel them; a cancelled invitation
// no longer starts or finishes an exchange.
func TestInvitationsListAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		owner, _, _ := f.pair(f.setupSecret(), "Ana", "")
		made := time.Now().UTC()
		a, err := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID, Access: 2 * time.Hour}, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		b, _ := f.m.Invite(InviteOptions{Role: Owner, By: owner.ID, Valid: time.Hour}, netip.AddrPort{})
		list := f.m.Invitations()
		want := []Invitation{
			{ID: InviteID(a.Secret[:]), Role: Viewer, By: owner.ID, ByName: "Ana", Created: made, Expires: made.Add(24 * time.Hour), Access: 2 * time.Hour},
			{ID: InviteID(b.Secret[:]), Role: Owner, By: owner.ID, ByName: "Ana", Created: made.Add(time.Second), Expires: made.Add(time.Hour + time.Second)},
		}
		if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
			t.Fatalf("invitations:\n got %+v\nwant %+v", list, want)
		}
		js, _ := json.Marshal(list)
		if !strings.Contains(string(js), `"access":"2h0m0s"`) || !strings.Contains(string(js), `"by_name":"Ana"`) || strings.Contains(string(js), "secret") {
			t.Fatalf("JSON: %s", js)
		}
		var back []Invitation
		if err := json.Unmarshal(js, &back); err != nil || len(back) != 2 || back[0] != want[0] || back[1] != want[1] {
			t.Fatalf("JSON round trip: %+v %v", back, err)
		}

		// An exchange started before the cancel fails after it, uncounted.
		nonce, err := f.m.Start(InviteID(a.Secret[:]), phone)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.CancelInvitation(InviteID(a.Secret[:])); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.m.Finish(FinishRequest{Nonce: nonce, Name: "x", Proof: Proof(a.Secret[:], testDeviceID, nonce, "x"), InviteID: InviteID(a.Secret[:]), From: phone})
		if !errors.Is(err, ErrBadInvite) {
			t.Fatalf("finishing a cancelled invitation: %v", err)
		}
		if _, err := f.m.Start(InviteID(a.Secret[:]), phone); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("starting a cancelled invitation: %v", err)
		}
		if err := f.m.CancelInvitation(InviteID(a.Secret[:])); !errors.Is(err, ErrNoInvite) {
			t.Fatalf("cancelling twice: %v", err)
		}
		if list := f.m.Invitations(); len(list) != 1 || list[0].ID != InviteID(b.Secret[:]) {
			t.Fatalf("after the cancel: %+v", list)
		}
		if w, l := f.m.Failures(); w != 0 || l != 0 {
			t.Fatalf("failures: %d %d", w, l)
		}
		// Used and expired invitations are not listed, and the next
		// invitation takes the expired ones out of the catalog.
		time.Sleep(2 * time.Hour)
		if list := f.m.Invitations(); len(list) != 0 {
			t.Fatalf("an expired invitation is listed: %+v", list)
		}
		c, _ := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
		if err := f.m.CancelInvitation(InviteID(b.Secret[:])); !errors.Is(err, ErrNoInvite) {
			t.Fatalf("the expired invitation is still in the catalog: %v", err)
		}
		f.pair(c.Secret[:], "guest", InviteID(c.Secret[:]))
		if list := f.m.Invitations(); len(list) != 0 {
			t.Fatalf("a used invitation is listed: %+v", list)
		}
	})
}

// TestInvitationValidityIsCapped: at most 7 days; longer is refused with
// the field, the value and the allowed range.
func TestInvitationValidityIsCapped(t *testing.T) {
	f := newFixture(t)
	if _, err := f.m.Invite(InviteOptions{Role: Viewer, Valid: MaxInviteValid}, netip.AddrPort{}); err != nil {
		t.Fatalf("7 days: %v", err)
	}
	cases := []struct {
		opts                  InviteOptions
		field, value, allowed string
	}{
		{InviteOptions{Role: Viewer, Valid: MaxInviteValid + time.Second}, "valid", `"168h0m1s"`, "at most 168h (7 days)"},
		{InviteOptions{Role: Viewer, Valid: 30 * 24 * time.Hour}, "valid", `"720h0m0s"`, "at most 168h (7 days)"},
		{InviteOptions{Role: Viewer, Valid: -time.Hour}, "valid", `"-1h0m0s"`, "more than 0"},
		{InviteOptions{Role: Viewer, Access: -time.Hour}, "access", `"-1h0m0s"`, "positive"},
		{InviteOptions{}, "role", `"none"`, `"viewer" or "owner"`},
	}
	for _, c := range cases {
		_, err := f.m.Invite(c.opts, netip.AddrPort{})
		var fe *fielderr.Error
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != c.field || fe.Value != c.value || !strings.Contains(fe.Allowed, c.allowed) {
			t.Errorf("%+v: %v, want %s %s (allowed: ...%s...)", c.opts, err, c.field, c.value, c.allowed)
		}
	}
	if n := len(f.m.Invitations()); n != 1 {
		t.Fatalf("%d invitations, want the one of 7 days", n)
	}
}

// TestInvitationsDieWithTheirMaker: revoking an owner kills the
// invitations it made (others' stay); an owner whose access ended cannot
// be invited through; removing the last owner kills them all.
func TestInvitationsDieWithTheirMaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ana, _, _ := f.pair(f.setupSecret(), "Ana", "")
		invitedBy := func(by User) Payload {
			t.Helper()
			p, err := f.m.Invite(InviteOptions{Role: Owner, By: by.ID}, netip.AddrPort{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		join := func(p Payload, name string) (User, error) {
			u, _, err := f.pair(p.Secret[:], name, InviteID(p.Secret[:]))
			return u, err
		}
		ben, err := join(invitedBy(ana), "Ben")
		if err != nil {
			t.Fatal(err)
		}
		fromBen, fromAna := invitedBy(ben), invitedBy(ana)
		if err := f.m.Revoke(ben.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := join(fromBen, "via Ben"); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("an invitation of a revoked owner: %v", err)
		}
		if list := f.m.Invitations(); len(list) != 1 || list[0].ID != InviteID(fromAna.Secret[:]) {
			t.Fatalf("invitations after revoking Ben: %+v", list)
		}
		// An owner with limited access: its invitations end with it.
		guestInv, _ := f.m.Invite(InviteOptions{Role: Owner, By: ana.ID, Access: time.Hour}, netip.AddrPort{})
		guest, err := join(guestInv, "guest owner")
		if err != nil {
			t.Fatal(err)
		}
		fromGuest := invitedBy(guest)
		time.Sleep(2 * time.Hour)
		if _, err := join(fromGuest, "via guest"); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("an invitation of an owner whose access ended: %v", err)
		}
		// The last owner goes (the guest owner is expired but still a
		// user: revoke it first), and every invitation with it.
		f.m.Revoke(guest.ID)
		if err := f.m.Revoke(ana.ID); err != nil {
			t.Fatal(err)
		}
		if list := f.m.Invitations(); len(list) != 0 {
			t.Fatalf("invitations after the last owner left: %+v", list)
		}
		if _, err := join(fromAna, "via Ana"); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("an invitation after the last owner left: %v", err)
		}
		var left int
		f.cat.View(func(tx *bbolt.Tx) error {
			left = len(invitationKeys(tx, func(string, *invite) bool { return true }))
			return nil
		})
		if left != 0 {
			t.Fatalf("%d invitations left in the catalog", left)
		}
	})
}

// TestLockedSetupStillTakesInvitations: the lifetime lock stops the
// setup code, not the owner's invitations.
func TestLockedSetupStillTakesInvitations(t *testing.T) {
	f := newFixture(t)
	owner, _, _ := f.pair(f.setupSecret(), "owner", "")
	for i := range 100 {
		if i%20 == 0 {
			f.m.OpenWindow()
		}
		f.pairFrom(stranger(i), make([]byte, SecretSize), "mallory", "")
	}
	if _, _, locked := f.m.Window(); !locked {
		t.Fatal("not locked")
	}
	inv, err := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.pair(inv.Secret[:], "tablet", InviteID(inv.Secret[:])); err != nil {
		t.Fatalf("an invitation while setup pairing is locked: %v", err)
	}
}

// TestNamesRefuseControlAndFormatCharacters: a user's name cannot hold
// Unicode Cc or Cf characters (bidi overrides, zero-width characters,
// escapes), at pairing or rename; the error names the field, the value
// (escaped) and what is allowed.
func TestNamesRefuseControlAndFormatCharacters(t *testing.T) {
	f := newFixture(t)
	owner, _, err := f.pair(f.setupSecret(), "Küche 🚪 カメラ", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"evil\u202egnp.exe", // right-to-left override
		"a\u2066b\u2069",    // isolates
		"zero\u200bwidth",   // zero width space
		"bom\ufeff",         // BOM
		"c1\u0085next",      // C1 (NEL)
		"esc\x1b[2J",        // C0
		"del\x7f",
		"tag\U000E0041", // language tag
		"soft\u00adhyphen",
	} {
		inv, _ := f.m.Invite(InviteOptions{Role: Viewer, By: owner.ID}, netip.AddrPort{})
		for what, err := range map[string]error{
			"pairing": func() error { _, _, err := f.pair(inv.Secret[:], name, InviteID(inv.Secret[:])); return err }(),
			"rename":  f.m.Rename(owner.ID, name),
		} {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || !errors.Is(err, ErrBadName) || fe.Field != "name" || fe.Allowed != NameRule {
				t.Errorf("%s %q: %v", what, name, err)
				continue
			}
			for _, r := range fe.Value + err.Error() {
				if r < 0x20 || r >= 0x7f {
					t.Errorf("%s %q: the error carries %U raw: %q", what, name, r, err)
				}
			}
		}
	}
	if us := f.m.Users(); len(us) != 1 || us[0].Name != "Küche 🚪 カメラ" {
		t.Fatalf("users: %+v", us)
	}
}
