package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/fielderr"
)

// fakePairing is the pairing manager as a struct of functions; a nil one
// is not expected to be called.
type fakePairing struct {
	start   func(inviteID string) ([]byte, error)
	finish  func(pairing.FinishRequest) (pairing.User, string, error)
	open    func() error
	until   time.Time
	users   []pairing.User
	rename  func(id, name string) error
	revoke  func(id string) error
	invite  func(pairing.InviteOptions, netip.AddrPort) (pairing.Payload, error)
	invites []pairing.Invitation
	cancel  func(id string) error
}

func (f *fakePairing) Invitations() []pairing.Invitation { return f.invites }
func (f *fakePairing) CancelInvitation(id string) error  { return f.cancel(id) }

func (f *fakePairing) Start(id string, _ netip.Addr) ([]byte, error) { return f.start(id) }
func (f *fakePairing) Finish(r pairing.FinishRequest) (pairing.User, string, error) {
	return f.finish(r)
}
func (f *fakePairing) OpenWindow() error               { return f.open() }
func (f *fakePairing) Window() (bool, time.Time, bool) { return true, f.until, false }
func (f *fakePairing) Users() []pairing.User           { return f.users }
func (f *fakePairing) Rename(id, name string) error    { return f.rename(id, name) }
func (f *fakePairing) Revoke(id string) error          { return f.revoke(id) }
func (f *fakePairing) Invite(o pairing.InviteOptions, h netip.AddrPort) (pairing.Payload, error) {
	return f.invite(o, h)
}

func TestPairingExchange(t *testing.T) {
	var got pairing.FinishRequest
	fake := &fakePairing{
		start: func(id string) ([]byte, error) {
			switch id {
			case "":
				return []byte{1, 2, 3}, nil
			case "busy":
				return nil, &pairing.RetryError{After: 1500 * time.Millisecond}
			case "closed":
				return nil, pairing.ErrWindowClosed
			}
			return nil, pairing.ErrLocked
		},
		finish: func(r pairing.FinishRequest) (pairing.User, string, error) {
			got = r
			if string(r.Proof) != "good" {
				return pairing.User{}, "", pairing.ErrBadProof
			}
			return pairing.User{ID: "u1", Role: pairing.Owner}, "camd1.token", nil
		},
	}
	routes := (&Pairing{Exchange: fake, Window: fake, DeviceID: "DEV"}).routes()

	var st PairStarted
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/pair/start", body: `{}`}), 200, &st)
	if string(st.Nonce) != "\x01\x02\x03" || st.DeviceID != "DEV" {
		t.Fatalf("started: %+v", st)
	}
	for invite, code := range map[string]int{"busy": 429, "closed": 403, "locked": 423} {
		w := do(t, routes, request{method: "POST", path: "/api/v1/pair/start", body: `{"invite_id": "` + invite + `"}`})
		if w.Code != code {
			t.Errorf("start %s: %d, want %d", invite, w.Code, code)
		}
		errorOf(t, w)
	}
	if w := do(t, routes, request{method: "POST", path: "/api/v1/pair/start", body: `{"invite_id": "busy"}`}); w.Header().Get("Retry-After") != "2" {
		t.Errorf("a client that must wait 1.5 s: Retry-After %q, want 2", w.Header().Get("Retry-After"))
	}
	if w := do(t, routes, request{method: "POST", path: "/api/v1/pair/start", body: `{"bogus": 1}`}); w.Code != 400 {
		t.Errorf("unknown field: %d", w.Code)
	}

	var p Paired
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/pair/finish",
		body: `{"nonce": "AQID", "name": "phone", "proof": "Z29vZA==", "invite_id": "i"}`}), 201, &p)
	if p != (Paired{UserID: "u1", Role: pairing.Owner, Token: "camd1.token", DeviceID: "DEV"}) {
		t.Fatalf("paired: %+v", p)
	}
	if got.Name != "phone" || got.InviteID != "i" || string(got.Nonce) != "\x01\x02\x03" {
		t.Fatalf("finish got %+v", got)
	}
	if w := do(t, routes, request{method: "POST", path: "/api/v1/pair/finish", body: `{"proof": "YmFk"}`}); w.Code != 401 {
		t.Errorf("wrong proof: %d", w.Code)
	}
}

func TestPairingWindow(t *testing.T) {
	until := time.Date(2025, 6, 1, 12, 15, 0, 0, time.UTC)
	fake := &fakePairing{until: until, open: func() error { return nil }}
	routes := (&Pairing{Exchange: fake, Window: fake}).routes()
	var out struct {
		OpenUntil time.Time `json:"open_until"`
	}
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/pair/window", token: "owner-token"}), 200, &out)
	if !out.OpenUntil.Equal(until) {
		t.Fatalf("open until %v", out.OpenUntil)
	}
	fake.open = func() error { return pairing.ErrLocked }
	if w := do(t, routes, request{method: "POST", path: "/api/v1/pair/window", token: "owner-token"}); w.Code != 423 {
		t.Fatalf("locked: %d", w.Code)
	}
}

func TestUsers(t *testing.T) {
	var renamed, revoked string
	var invited pairing.InviteOptions
	var host netip.AddrPort
	var cancelled string
	fake := &fakePairing{
		users:   []pairing.User{theOwner, theViewer},
		invites: []pairing.Invitation{{ID: "inv1", Role: pairing.Viewer, By: "u-owner", Expires: time.Now().Add(time.Hour)}},
		cancel: func(id string) error {
			if id != "inv1" {
				return pairing.ErrNoInvite
			}
			cancelled = id
			return nil
		},
		rename: func(id, name string) error {
			if name == "" {
				return pairing.ErrBadName
			}
			renamed = id + "=" + name
			return nil
		},
		revoke: func(id string) error {
			if id != "u-viewer" {
				return pairing.ErrNoUser
			}
			revoked = id
			return nil
		},
		invite: func(o pairing.InviteOptions, h netip.AddrPort) (pairing.Payload, error) {
			if o.Valid > pairing.MaxInviteValid {
				return pairing.Payload{}, &fielderr.Error{Scope: "pairing", Field: "valid", Value: `"` + o.Valid.String() + `"`, Allowed: "at most 7 days", Kind: pairing.ErrInvalid}
			}
			invited, host = o, h
			return pairing.Payload{Kind: pairing.Invite, Role: o.Role}, nil
		},
	}
	routes := (&Users{Accounts: fake, Invites: fake, Settings: &fakeSettings{s: settings.Settings{Name: "Porch"}}, DeviceID: "DEV"}).routes()

	var me struct {
		User     pairing.User `json:"user"`
		DeviceID string       `json:"device_id"`
		Name     string       `json:"name"`
	}
	w := do(t, routes, request{method: "GET", path: "/api/v1/me", token: "owner-token"})
	answer(t, w, 200, &me)
	if me.User.ID != "u-owner" || me.DeviceID != "DEV" || me.Name != "Porch" || len(me.User.TokenHash) != 0 {
		t.Fatalf("me: %s", w.Body)
	}
	var list []pairing.User
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/users", token: "owner-token"}), 200, &list)
	if len(list) != 2 {
		t.Fatalf("users: %+v", list)
	}

	var inv struct {
		Payload, InviteID, Link string
	}
	w = do(t, routes, request{method: "POST", path: "https://192.0.2.1:8443/api/v1/users/invite", token: "owner-token",
		body: `{"role": "viewer", "valid": "30m", "access": "24h"}`})
	answer(t, w, 200, &inv)
	if invited != (pairing.InviteOptions{Role: pairing.Viewer, Valid: 30 * time.Minute, Access: 24 * time.Hour, By: "u-owner"}) {
		t.Fatalf("invited with %+v", invited)
	}
	// The payload names the address the owner reached the camera at.
	if host.String() != "192.0.2.1:8443" {
		t.Fatalf("host hint %v", host)
	}
	if inv.Payload == "" || inv.Link != "https://192.0.2.1:8443/#pair="+inv.Payload {
		t.Fatalf("invitation: %s", w.Body)
	}
	for _, body := range []string{`{"valid": "soon"}`, `{"access": "-1h"}`, `{"role": "admin"}`} {
		if w := do(t, routes, request{method: "POST", path: "/api/v1/users/invite", token: "owner-token", body: body}); w.Code != 400 {
			t.Errorf("invite %s: %d", body, w.Code)
		}
	}

	// A value the manager refuses: 422 naming the field and what is allowed.
	var refused struct{ Error, Field, Allowed string }
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/users/invite", token: "owner-token", body: `{"valid": "240h"}`}), 422, &refused)
	if refused.Field != "valid" || refused.Allowed == "" {
		t.Errorf("a 10-day invitation: %+v", refused)
	}

	var invs []pairing.Invitation
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/users/invitations", token: "owner-token"}), 200, &invs)
	if len(invs) != 1 || invs[0].ID != "inv1" || invs[0].By != "u-owner" {
		t.Fatalf("invitations: %+v", invs)
	}
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/users/invitations/inv1", token: "owner-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/users/invitations/gone", token: "owner-token"}), 404, nil)
	if cancelled != "inv1" {
		t.Fatalf("cancelled %q", cancelled)
	}

	answer(t, do(t, routes, request{method: "PATCH", path: "/api/v1/users/u-viewer", token: "owner-token", body: `{"name": "hall"}`}), 204, nil)
	answer(t, do(t, routes, request{method: "PATCH", path: "/api/v1/users/u-viewer", token: "owner-token", body: `{"name": ""}`}), 400, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/users/u-viewer", token: "owner-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/users/nobody", token: "owner-token"}), 404, nil)
	if renamed != "u-viewer=hall" || revoked != "u-viewer" {
		t.Fatalf("renamed %q, revoked %q", renamed, revoked)
	}
}

// The address in an invitation is the one the owner reached the camera
// at: the Host header if it is an address, else the connection's.
func TestHostHint(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 8443}
	for _, c := range []struct {
		host  string
		local net.Addr
		want  string
	}{
		{"192.0.2.1:8443", local, "192.0.2.1:8443"},
		{"[2001:db8::1]:443", nil, "[2001:db8::1]:443"},
		{"camera.local:8443", local, "192.0.2.7:8443"},
		{"camera.local", nil, "invalid AddrPort"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = c.host
		if c.local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, c.local))
		}
		if got := hostHint(r).String(); got != c.want {
			t.Errorf("Host %s: %s, want %s", c.host, got, c.want)
		}
	}
}
