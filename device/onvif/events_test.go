package onvif

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

// subscribe creates a PullPoint subscription and returns its path.
func (f *fixture) subscribe(c *creds, termination string) (string, answer) {
	f.t.Helper()
	body := `<tev:CreatePullPointSubscription/>`
	if termination != "" {
		body = `<tev:CreatePullPointSubscription><tev:InitialTerminationTime>` + termination + `</tev:InitialTerminationTime></tev:CreatePullPointSubscription>`
	}
	a := f.post(EventsPath, f.envelope(c, body))
	addr := a.body.text("SubscriptionReference", "Address")
	u, err := url.Parse(addr)
	if a.status != http.StatusOK || err != nil {
		return "", a
	}
	return u.Path, a
}

func (f *fixture) pull(c *creds, path, timeout string, limit int) answer {
	f.t.Helper()
	return f.post(path, f.envelope(c, `<tev:PullMessages><tev:Timeout>`+timeout+`</tev:Timeout><tev:MessageLimit>`+
		strconv.Itoa(limit)+`</tev:MessageLimit></tev:PullMessages>`))
}

// messages lists a PullMessagesResponse's notifications as
// "topic name=value".
func messages(a answer) []string {
	var out []string
	for _, n := range a.body.Children {
		if n.Name.Local != "NotificationMessage" {
			continue
		}
		s := n.text("Topic")
		for _, it := range n.path("Message", "Message", "Data").Children {
			s += " " + it.attr("Name") + "=" + it.attr("Value")
		}
		out = append(out, s)
	}
	return out
}

// TestMotionThroughPullMessages: motion and its end, a doorbell press
// and a call come through PullMessages as the topics HA and Frigate
// read; events of other types do not; a pull waits for an event.
func TestMotionThroughPullMessages(t *testing.T) {
	f := newFixture(t, nil)
	path, a := f.subscribe(f.key(), "PT120S")
	if path == "" {
		t.Fatalf("subscribe: %d %s", a.status, a.raw)
	}
	if !strings.HasPrefix(path, SubscriptionPath) || a.body.text("TerminationTime") != xsdTime(f.clock().Add(2*time.Minute)) {
		t.Errorf("subscription %q until %q", path, a.body.text("TerminationTime"))
	}
	if a := f.pull(f.key(), path, "PT0S", 10); a.status != http.StatusOK || len(messages(a)) != 0 {
		t.Fatalf("empty pull: %d %v %s", a.status, messages(a), a.raw)
	}
	at := time.Date(2026, 12, 7, 8, 0, 1, 0, time.UTC)
	f.bus.Publish(eventlog.Event{ID: 1, Kind: events.Motion, Time: at})
	f.bus.Publish(eventlog.Event{ID: 2, Kind: events.SettingsChanged, Time: at})
	f.bus.Publish(eventlog.Event{ID: 3, Kind: events.MotionEnd, Time: at})
	f.bus.Publish(eventlog.Event{ID: 4, Kind: events.DoorbellPressed, Time: at})
	f.bus.Publish(eventlog.Event{ID: 5, Kind: events.CallRinging, Time: at})
	want := []string{
		"tns1:RuleEngine/CellMotionDetector/Motion IsMotion=true", "tns1:VideoSource/MotionAlarm State=true",
		"tns1:RuleEngine/CellMotionDetector/Motion IsMotion=false", "tns1:VideoSource/MotionAlarm State=false",
		"tns1:Device/Trigger/DigitalInput LogicalState=true", "tns1:Device/Trigger/DigitalInput LogicalState=false",
		"tns1:RuleEngine/MyRuleDetector/Visitor State=true",
	}
	// A limit of 3 hands the rest to the next pulls, in order.
	var got []string
	for len(got) < len(want) {
		a := f.pull(f.key(), path, "PT5S", 3)
		m := messages(a)
		if a.status != http.StatusOK || len(m) == 0 || len(m) > 3 {
			t.Fatalf("pull: %d %v %s", a.status, m, a.raw)
		}
		got = append(got, m...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	if a := f.pull(f.key(), path, "PT0S", 10); strings.Contains(a.raw, "UtcTime=\"2026-12-07T08:00:01.000Z\"") || len(messages(a)) != 0 {
		t.Errorf("the events again: %v", messages(a))
	}

	// A pull waiting for an event returns it when it comes.
	done := make(chan answer)
	go func() { done <- f.pull(f.key(), path, "PT60S", 10) }()
	f.bus.Publish(eventlog.Event{ID: 6, Kind: events.Motion, Time: at})
	if m := messages(<-done); len(m) != 2 || m[0] != want[0] {
		t.Errorf("waiting pull: %v", m)
	}
}

// TestSubscriptionLifetime: a subscription ends at its termination time
// unless renewed or pulled; Unsubscribe ends it; another key's
// requests and too many subscriptions are refused; Close ends them all.
func TestSubscriptionLifetime(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxSubscriptionsPerUser = 2; o.MaxTermination = 5 * time.Minute })
	path, _ := f.subscribe(f.key(), "PT60S")
	f.advance(50 * time.Second)
	a := f.post(path, f.envelope(f.key(), `<wsnt:Renew><wsnt:TerminationTime>PT60S</wsnt:TerminationTime></wsnt:Renew>`))
	if a.status != http.StatusOK || a.body.text("TerminationTime") != xsdTime(f.clock().Add(time.Minute)) {
		t.Fatalf("renew: %d %s", a.status, a.raw)
	}
	f.advance(50 * time.Second)
	if a := f.pull(f.key(), path, "PT0S", 1); a.status != http.StatusOK {
		t.Fatalf("pull after the renew: %d %s", a.status, a.raw)
	}
	f.advance(61 * time.Second)
	if a := f.pull(f.key(), path, "PT0S", 1); a.status != http.StatusBadRequest || !slices.Contains(a.faultCodes(), "ter:InvalidSubscription") {
		t.Errorf("pull after the termination time: %d %v", a.status, a.faultCodes())
	}

	// Asking for more than MaxTermination gets MaxTermination.
	path, a = f.subscribe(f.key(), "PT1H")
	if a.body.text("TerminationTime") != xsdTime(f.clock().Add(5*time.Minute)) {
		t.Errorf("PT1H: until %s", a.body.text("TerminationTime"))
	}
	if _, a := f.subscribe(f.key(), ""); a.status != http.StatusOK {
		t.Fatalf("second: %d", a.status)
	}
	if _, a := f.subscribe(f.key(), ""); a.status != 500 || !slices.Contains(a.faultCodes(), "ter:ResourceProblem") {
		t.Errorf("third for one key: %d %v", a.status, a.faultCodes())
	}
	if a := f.post(path, f.envelope(f.key(), `<wsnt:Unsubscribe/>`)); a.status != http.StatusOK || a.body.Name.Local != "UnsubscribeResponse" {
		t.Fatalf("unsubscribe: %d %s", a.status, a.raw)
	}
	if a := f.pull(f.key(), path, "PT0S", 1); a.status != http.StatusBadRequest {
		t.Errorf("pull after Unsubscribe: %d", a.status)
	}
	if a := f.post(SubscriptionPath+"999", f.envelope(f.key(), `<wsnt:Renew/>`)); a.status != http.StatusBadRequest {
		t.Errorf("renew of none: %d", a.status)
	}
	path, _ = f.subscribe(f.key(), "")
	f.srv.Close()
	if a := f.pull(f.key(), path, "PT0S", 1); a.status != http.StatusBadRequest {
		t.Errorf("pull after Close: %d", a.status)
	}
	if _, a := f.subscribe(f.key(), ""); a.status != 500 {
		t.Errorf("subscribe after Close: %d", a.status)
	}
}

// TestEndedSubscription: when the bus ends a subscription (its key was
// revoked: the session guard calls EndUser), a pull says so and the
// subscription is gone.
func TestEndedSubscription(t *testing.T) {
	f := newFixture(t, nil)
	path, _ := f.subscribe(f.key(), "")
	done := make(chan answer)
	go func() { done <- f.pull(f.key(), path, "PT60S", 1) }()
	f.bus.EndUser(testUser, "revoked")
	if a := <-done; a.status != http.StatusBadRequest || !strings.Contains(a.raw, "ended") {
		t.Errorf("pull of an ended subscription: %d %s", a.status, a.raw)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT60S": time.Minute, "PT1M": time.Minute, "PT10M": 10 * time.Minute,
		"P1D": 24 * time.Hour, "PT1H30M": 90 * time.Minute, "PT0.5S": 500 * time.Millisecond, "PT0S": 0} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "60", "P1Y", "PT-5S", "PT1S2M"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
