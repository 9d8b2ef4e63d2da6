package api

import (
	"testing"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/fielderr"
)

// fakeKeys keeps keys in memory.
type fakeKeys struct {
	keys []pairing.Key
	opts pairing.KeyOptions
}

func (f *fakeKeys) AddKey(opts pairing.KeyOptions) (pairing.KeyCredential, error) {
	f.opts = opts
	if opts.Scope != "" && opts.Scope != pairing.ScopeView {
		return pairing.KeyCredential{}, &fielderr.Error{Scope: "pairing", Field: "scope", Value: opts.Scope, Allowed: "view", Kind: pairing.ErrInvalid}
	}
	k := pairing.Key{ID: "k1", For: opts.For, Scope: pairing.ScopeView, By: opts.By}
	f.keys = append(f.keys, k)
	return pairing.KeyCredential{Key: k, Secret: "s3cret", Token: "camdk1.k1.s3cret"}, nil
}

func (f *fakeKeys) Keys() []pairing.Key { return f.keys }

func (f *fakeKeys) RevokeKey(id string) error {
	for i, k := range f.keys {
		if k.ID == id {
			f.keys = append(f.keys[:i], f.keys[i+1:]...)
			return nil
		}
	}
	return pairing.ErrNoKey
}

func TestKeys(t *testing.T) {
	keys := &fakeKeys{}
	routes := (&Users{Keys: keys}).routes()
	var made pairing.KeyCredential
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/keys", token: "owner-token", body: `{"for": "frigate", "scope": "view"}`}), 201, &made)
	if made.Secret != "s3cret" || made.Token == "" || keys.opts.By != theOwner.ID || keys.opts.For != "frigate" {
		t.Fatalf("made %+v with %+v", made, keys.opts)
	}
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/keys", token: "owner-token", body: `{"for": "x", "scope": "owner"}`}), 422, nil)
	var list []map[string]any
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/keys", token: "owner-token"}), 200, &list)
	if len(list) != 1 || list[0]["secret"] != nil || list[0]["id"] != "k1" {
		t.Fatalf("list: %v", list)
	}
	// Owner only: a viewer and a stream key are refused.
	for _, tok := range []string{"viewer-token", "key-token"} {
		for _, r := range []request{
			{method: "GET", path: "/api/v1/keys"},
			{method: "POST", path: "/api/v1/keys", body: `{"for": "me"}`},
			{method: "DELETE", path: "/api/v1/keys/k1"},
		} {
			r.token = tok
			answer(t, do(t, routes, r), 403, nil)
		}
	}
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/keys/k1", token: "owner-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/keys/k1", token: "owner-token"}), 404, nil)
}
