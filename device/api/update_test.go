package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/camd-project/camd/update"
)

// fakeUpdater answers what the test says and notes what was applied.
type fakeUpdater struct {
	status   update.Status
	checkErr error
	applyErr error
	checks   int
	applied  []string
}

func (f *fakeUpdater) Status() update.Status { return f.status }

func (f *fakeUpdater) Check(context.Context) (update.Status, error) {
	f.checks++
	return f.status, f.checkErr
}

func (f *fakeUpdater) Apply(version string) error {
	f.applied = append(f.applied, version)
	return f.applyErr
}

// TestUpdateRoutes: only an owner sees, checks or applies an update; the
// errors answer what the owner can act on.
func TestUpdateRoutes(t *testing.T) {
	fake := &fakeUpdater{status: update.Status{Enabled: true, Version: "1.0.0", State: update.Idle,
		Available: &update.Offer{Version: "1.1.0", Notes: "fixes", Size: 30 << 20}}}
	routes := (&Update{Updater: fake}).routes()
	calls := []request{
		{method: "GET", path: "/api/v1/update"},
		{method: "POST", path: "/api/v1/update/check", body: `{}`},
		{method: "POST", path: "/api/v1/update/apply", body: `{"version": "1.1.0"}`},
	}
	for _, c := range calls {
		for token, code := range map[string]int{"": 401, "revoked-token": 401, "viewer-token": 403} {
			c.token = token
			answer(t, do(t, routes, c), code, nil)
		}
	}
	if fake.checks != 0 || len(fake.applied) != 0 {
		t.Fatalf("ran for a viewer or a stranger: %+v", fake)
	}

	var st update.Status
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/update", token: "owner-token"}), 200, &st)
	if st.Available == nil || st.Available.Notes != "fixes" || st.Available.Size != 30<<20 {
		t.Fatalf("status: %+v", st)
	}
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/update/check", token: "owner-token", body: `{}`}), 200, &st)

	for _, c := range []struct {
		err  error
		code int
		why  string
	}{
		{update.ErrOff, 409, ""}, {update.ErrNoFeed, 409, ""}, {update.ErrNoKeys, 409, ""},
		{fmt.Errorf("%w: at 2026-01-01", update.ErrExpired), 502, "expired"},
		{update.ErrSignature, 502, "signature"}, {update.ErrReplayed, 502, "replayed"},
		{update.ErrDowngrade, 502, "downgrade"}, {fmt.Errorf("update: feed: connection refused"), 502, ""},
	} {
		fake.checkErr = c.err
		w := do(t, routes, request{method: "POST", path: "/api/v1/update/check", token: "owner-token", body: `{}`})
		var ans RefusedAnswer
		answer(t, w, c.code, &ans)
		if ans.Error != c.err.Error() || ans.Reason != c.why {
			t.Errorf("%v: %+v", c.err, ans)
		}
	}

	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/update/apply", token: "owner-token", body: `{}`}), 400, nil)
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/update/apply", token: "owner-token", body: `{"version": "1.1.0"}`}), 202, &st)
	for _, err := range []error{update.ErrBusy, update.ErrNoUpdate, update.ErrApproval} {
		fake.applyErr = err
		if w := do(t, routes, request{method: "POST", path: "/api/v1/update/apply", token: "owner-token", body: `{"version": "1.1.0"}`}); w.Code != 409 || errorOf(t, w) != err.Error() {
			t.Errorf("apply with %v: %d %s", err, w.Code, w.Body)
		}
	}
	if len(fake.applied) != 4 || fake.applied[0] != "1.1.0" {
		t.Fatalf("applied: %v", fake.applied)
	}

	// A camd without an updater says so.
	answer(t, do(t, (&Update{}).routes(), request{method: "GET", path: "/api/v1/update", token: "owner-token"}), 503, nil)
}
