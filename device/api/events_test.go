package api

import (
	"testing"
	"time"

	"github.com/camd-project/camd/storage/eventlog"
)

// fakeEvents notes what it was asked.
type fakeEvents struct {
	from, to time.Time
	kind     string
	limit    int
}

func (f *fakeEvents) List(from, to time.Time, kind string, limit int) ([]eventlog.Event, error) {
	f.from, f.to, f.kind, f.limit = from, to, kind, limit
	if kind == "broken" {
		return nil, errDisk
	}
	return []eventlog.Event{{ID: 2, Kind: kind}, {ID: 1, Kind: kind}}, nil
}

func TestEvents(t *testing.T) {
	f := &fakeEvents{}
	routes := (&Events{Log: f}).routes()
	var list []eventlog.Event
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?kind=motion&from=2025-06-01T08:00:00Z&to=now&limit=5000", token: "viewer-token"}), 200, &list)
	if len(list) != 2 || f.kind != "motion" || f.limit != 1000 || !f.from.Equal(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)) ||
		time.Since(f.to) > time.Minute {
		t.Fatalf("asked %+v, got %+v", f, list)
	}
	// No range: all of it.
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?limit=-3", token: "viewer-token"}), 200, &list)
	if !f.from.IsZero() || !f.to.IsZero() || f.limit != 0 {
		t.Fatalf("asked %+v", f)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?from=yesterday", token: "viewer-token"}), 400, nil)
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?to=yesterday", token: "viewer-token"}), 400, nil)
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?kind=broken", token: "viewer-token"}), 500, nil)
	answer(t, do(t, (&Events{}).routes(), request{method: "GET", path: "/api/v1/events", token: "viewer-token"}), 503, nil)
}
