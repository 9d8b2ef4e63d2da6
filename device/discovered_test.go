package device

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/pairing"
)

// The daemons of these tests listen on loopback: the owner's search asks
// no interface (nothing is multicast on the host's) and says why; a
// revoked owner gets 401 (the role matrix is TestEveryRouteNeedsACredential's).
func TestDiscoveredOverHTTPS(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	code, b := call(t, d, "GET", "/api/v1/cameras/discovered", ownerToken, nil)
	var ans api.DiscoveredAnswer
	if code != http.StatusOK || json.Unmarshal(b, &ans) != nil {
		t.Fatalf("discovered: %d %s", code, b)
	}
	if len(ans.Cameras) != 0 || len(ans.Interfaces) != 0 || !strings.Contains(ans.NotSearched, "loopback") {
		t.Errorf("on loopback: %s", b)
	}

	// A second owner, revoked.
	code, b = call(t, d, "POST", "/api/v1/users/invite", ownerToken, api.InviteRequest{Role: pairing.Owner})
	var inv struct {
		Payload  string `json:"payload"`
		InviteID string `json:"invite_id"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &inv) != nil {
		t.Fatalf("invite: %d %s", code, b)
	}
	p, err := pairing.Parse(inv.Payload)
	if err != nil {
		t.Fatal(err)
	}
	code, second := pairWith(t, d, p.Secret[:], "second owner", inv.InviteID)
	if code != http.StatusCreated || second.Role != pairing.Owner {
		t.Fatalf("second owner: %d %+v", code, second)
	}
	if code, b := call(t, d, "GET", "/api/v1/cameras/discovered", second.Token, nil); code != http.StatusOK {
		t.Fatalf("second owner: %d %s", code, b)
	}
	if code, b := call(t, d, "DELETE", "/api/v1/users/"+second.UserID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if code, _ := call(t, d, "GET", "/api/v1/cameras/discovered", second.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked owner: %d, want 401", code)
	}
}
