package pairing

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"
)

// TestStreamKeys: a key made for a user or a device works as Basic and
// bearer credentials and through VerifyKey, as a viewer and nothing more;
// it survives a restart with the same root; it is listed without its
// secret, and revoked it stops at once.
func TestStreamKeys(t *testing.T) {
	root := bytes.Repeat([]byte{7}, 32)
	f := newFixtureWith(t, t.TempDir(), Options{DeviceID: testDeviceID, StreamKeyRoot: root})
	ana, _, _ := f.pair(f.setupSecret(), "Ana", "")
	p, _ := f.m.Invite(InviteOptions{Role: Owner, By: ana.ID}, netip.AddrPort{})
	ben, _, err := f.pair(p.Secret[:], "Ben", InviteID(p.Secret[:]))
	if err != nil {
		t.Fatal(err)
	}
	forBen, err := f.m.AddKey(KeyOptions{For: "Ben", By: ana.ID})
	if err != nil {
		t.Fatal(err)
	}
	nvr, err := f.m.AddKey(KeyOptions{For: "frigate", Scope: "view", By: ana.ID})
	if err != nil {
		t.Fatal(err)
	}
	if forBen.User != ben.ID || nvr.User != "" || forBen.Scope != ScopeView {
		t.Fatalf("keys: %+v %+v", forBen.Key, nvr.Key)
	}
	if forBen.Token != "camdk1."+forBen.ID+"."+forBen.Secret || len(forBen.Secret) != 32 {
		t.Fatalf("credential: %+v", forBen)
	}
	check := func(k KeyCredential) {
		t.Helper()
		for name, auth := range map[string]func() (User, error){
			"basic":  func() (User, error) { return f.m.AuthenticateKey(k.ID, k.Secret) },
			"bearer": func() (User, error) { return f.m.Authenticate(k.Token) },
			// An RTSP digest response, as the RTSP server computes it.
			"digest": func() (User, error) {
				ha1 := md5hex(k.ID + ":camd:" + k.Secret)
				resp := md5hex(ha1 + ":nonce:" + md5hex("DESCRIBE:rtsp://cam/live"))
				return f.m.VerifyKey(k.ID, func(secret string) bool {
					return md5hex(md5hex(k.ID+":camd:"+secret)+":nonce:"+md5hex("DESCRIBE:rtsp://cam/live")) == resp
				})
			},
		} {
			u, err := auth()
			if err != nil || u.Role != Viewer || u.Key != k.ID || u.ID != KeySubject(k.ID) || u.Name != k.For {
				t.Fatalf("%s: %+v %v", name, u, err)
			}
		}
	}
	check(forBen)
	check(nvr)
	for _, bad := range []func() (User, error){
		func() (User, error) { return f.m.AuthenticateKey(nvr.ID, forBen.Secret) },
		func() (User, error) { return f.m.AuthenticateKey(nvr.ID, "") },
		func() (User, error) { return f.m.AuthenticateKey("nope", nvr.Secret) },
		func() (User, error) { return f.m.Authenticate("camdk1." + nvr.ID + "." + forBen.Secret) },
		func() (User, error) { return f.m.Authenticate("camdk1." + nvr.ID) },
	} {
		if _, err := bad(); !errors.Is(err, ErrUnknownCredential) {
			t.Fatalf("a wrong key: %v", err)
		}
	}
	// Listed without secrets; the catalog holds neither secret.
	if list := f.m.Keys(); len(list) != 2 || list[0].ID != forBen.ID || list[1].ID != nvr.ID {
		t.Fatalf("keys: %+v", list)
	}
	f.cat.Close()
	db, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []KeyCredential{forBen, nvr} {
		if bytes.Contains(db, []byte(k.Secret)) {
			t.Fatal("the catalog holds a key's secret")
		}
	}
	f.open()
	check(forBen)
	// Another root (a reset made a new one): the keys do not work.
	f.opts.StreamKeyRoot = bytes.Repeat([]byte{8}, 32)
	f.restart()
	if _, err := f.m.AuthenticateKey(nvr.ID, nvr.Secret); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("a key under another root: %v", err)
	}
	f.opts.StreamKeyRoot = root
	f.restart()

	if err := f.m.RevokeKey(nvr.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Authenticate(nvr.Token); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("a revoked key: %v", err)
	}
	if err := f.m.RevokeKey(nvr.ID); !errors.Is(err, ErrNoKey) {
		t.Fatalf("revoking twice: %v", err)
	}
	// Revoked with its user.
	if err := f.m.Revoke(ben.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Authenticate(forBen.Token); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("the key of a revoked user: %v", err)
	}
	if list := f.m.Keys(); len(list) != 0 {
		t.Fatalf("keys left: %+v", list)
	}
	if n := keyRecords(f); n != 0 {
		t.Fatalf("%d key records left in the catalog", n)
	}
}

func keyRecords(f *fixture) int {
	n := 0
	f.cat.View(func(tx *bbolt.Tx) error {
		m := map[string]*keyRecord{}
		loadKeys(tx, m)
		n = len(m)
		return nil
	})
	return n
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestStreamKeyRefusals(t *testing.T) {
	f := newFixture(t)
	ana, _, _ := f.pair(f.setupSecret(), "Ana", "")
	for _, opts := range []KeyOptions{
		{For: "nvr", Scope: "owner", By: ana.ID},
		{For: "nvr", Scope: "admin", By: ana.ID},
		{For: "", By: ana.ID},
		{For: "evil\u202egnp", By: ana.ID},
	} {
		if _, err := f.m.AddKey(opts); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: %v", opts, err)
		}
	}
	for range MaxKeys {
		if _, err := f.m.AddKey(KeyOptions{For: "nvr", By: ana.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.AddKey(KeyOptions{For: "nvr", By: ana.ID}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("key %d: %v", MaxKeys+1, err)
	}
}

// TestStreamKeysDieWithTheirMakerAndTheLastOwner: a device key dies with
// the owner who made it; a key of a user whose access ends stops with it;
// the last owner's revocation and a reset take every key.
func TestStreamKeysDieWithTheirMakerAndTheLastOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ana, _, _ := f.pair(f.setupSecret(), "Ana", "")
		inv := func(role Role, access time.Duration) User {
			p, _ := f.m.Invite(InviteOptions{Role: role, By: ana.ID, Access: access}, netip.AddrPort{})
			u, _, err := f.pair(p.Secret[:], "u"+p.String()[:6], InviteID(p.Secret[:]))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		ben := inv(Owner, 0)
		guest := inv(Viewer, time.Hour)
		byBen, _ := f.m.AddKey(KeyOptions{For: "nvr", By: ben.ID})
		forGuest, _ := f.m.AddKey(KeyOptions{For: guest.ID, By: ana.ID})
		byAna, _ := f.m.AddKey(KeyOptions{For: "ha", By: ana.ID})
		if u, err := f.m.Authenticate(forGuest.Token); err != nil || !u.Expires.Equal(guest.Expires) {
			t.Fatalf("guest's key: %+v %v", u, err)
		}
		if err := f.m.Revoke(ben.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Authenticate(byBen.Token); !errors.Is(err, ErrUnknownCredential) {
			t.Fatalf("a key made by a revoked owner: %v", err)
		}
		time.Sleep(2 * time.Hour)
		if _, err := f.m.Authenticate(forGuest.Token); !errors.Is(err, ErrExpired) {
			t.Fatalf("the key of a guest whose access ended: %v", err)
		}
		if us := f.m.KeyUsers(); len(us) != 1 || us[0].ID != KeySubject(byAna.ID) {
			t.Fatalf("key users: %+v", us)
		}
		f.m.Revoke(guest.ID)
		if err := f.m.Revoke(ana.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Authenticate(byAna.Token); !errors.Is(err, ErrUnknownCredential) || keyRecords(f) != 0 {
			t.Fatalf("a key after the last owner left: %v, %d records", err, keyRecords(f))
		}
		ana, _, _ = f.pair(f.setupSecret(), "Ana", "")
		k, _ := f.m.AddKey(KeyOptions{For: "ha", By: ana.ID})
		if err := f.m.Reset(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Authenticate(k.Token); !errors.Is(err, ErrUnknownCredential) || keyRecords(f) != 0 {
			t.Fatalf("a key after a reset: %v", err)
		}
	})
}

// BenchmarkAuthenticateKey is a stream key's check as Basic or bearer
// credentials: the secret derived again (an HMAC) and compared.
func BenchmarkAuthenticateKey(b *testing.B) {
	cat := catalogAt(b, b.TempDir()+"/catalog.db")
	defer cat.Close()
	m, err := Open(cat, Options{DeviceID: testDeviceID})
	if err != nil {
		b.Fatal(err)
	}
	k, err := m.AddKey(KeyOptions{For: "nvr"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Authenticate(k.Token); err != nil {
			b.Fatal(err)
		}
	}
}
