package onvif

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

// Kinds are the event types a PullPoint subscription carries.
var Kinds = []string{
	events.Motion, events.MotionEnd,
	events.DoorbellPressed, events.CallRinging, events.CallAnswered, events.CallEnded, events.CallMissed,
}

// Topics camd publishes (docs/onvif.md): the two motion topics Home
// Assistant's ONVIF integration and Frigate read, the doorbell as a
// digital input, and a ringing call as a visitor.
const (
	topicCellMotion   = "tns1:RuleEngine/CellMotionDetector/Motion"
	topicMotionAlarm  = "tns1:VideoSource/MotionAlarm"
	topicDigitalInput = "tns1:Device/Trigger/DigitalInput"
	topicVisitor      = "tns1:RuleEngine/MyRuleDetector/Visitor"
)

// notification is one ONVIF event message.
type notification struct {
	topic  string
	when   time.Time
	source [][2]string // SimpleItem name, value
	data   [][2]string
}

// notifications are what one camd event becomes.
func notifications(e eventlog.Event) []notification {
	motion := func(on bool) []notification {
		v := strconv.FormatBool(on)
		return []notification{
			{topic: topicCellMotion, when: e.Time, source: [][2]string{
				{"VideoSourceConfigurationToken", videoSourceCfToken},
				{"VideoAnalyticsConfigurationToken", "motion"}, {"Rule", "MotionRule"},
			}, data: [][2]string{{"IsMotion", v}}},
			{topic: topicMotionAlarm, when: e.Time, source: [][2]string{{"Source", videoSourceToken}}, data: [][2]string{{"State", v}}},
		}
	}
	visitor := func(on bool) []notification {
		return []notification{{topic: topicVisitor, when: e.Time, source: [][2]string{{"Source", videoSourceToken}},
			data: [][2]string{{"State", strconv.FormatBool(on)}}}}
	}
	switch e.Kind {
	case events.Motion:
		return motion(true)
	case events.MotionEnd:
		return motion(false)
	case events.DoorbellPressed:
		// A press: the input goes on and off again.
		in := func(on bool) notification {
			return notification{topic: topicDigitalInput, when: e.Time, source: [][2]string{{"InputToken", "doorbell"}},
				data: [][2]string{{"LogicalState", strconv.FormatBool(on)}}}
		}
		return []notification{in(true), in(false)}
	case events.CallRinging:
		return visitor(true)
	case events.CallAnswered, events.CallEnded, events.CallMissed:
		return visitor(false)
	}
	return nil
}

func (n notification) write(w *writer) {
	w.open("wsnt:NotificationMessage").elem2("wsnt:Topic", n.topic, "Dialect", topicDialect).
		open("wsnt:Message").open("tt:Message", "UtcTime", xsdTime(n.when), "PropertyOperation", "Changed").open("tt:Source")
	for _, it := range n.source {
		w.empty("tt:SimpleItem", "Name", it[0], "Value", it[1])
	}
	w.close("tt:Source").open("tt:Data")
	for _, it := range n.data {
		w.empty("tt:SimpleItem", "Name", it[0], "Value", it[1])
	}
	w.close("tt:Data").close("tt:Message").close("wsnt:Message").close("wsnt:NotificationMessage")
}

// pullPoint is one PullPoint subscription: a bus subscription read by
// PullMessages, ended by Unsubscribe, its termination time, camd's stop,
// or the end of its key.
type pullPoint struct {
	id      uint64
	user    string
	sub     Subscription
	keep    time.Duration // how long each Renew or PullMessages extends it
	lock    chan struct{} // held by the one PullMessages reading sub
	pending []notification

	expires time.Time // under Server.mu
}

// sweep ends the subscriptions whose termination time passed.
func (s *Server) sweep(now time.Time) {
	var ended []*pullPoint
	s.mu.Lock()
	for id, p := range s.subs {
		if !now.Before(p.expires) {
			delete(s.subs, id)
			ended = append(ended, p)
		}
	}
	s.mu.Unlock()
	for _, p := range ended {
		p.sub.Close()
		s.o.Logger.Info("onvif: subscription expired", "id", p.id, "user", p.user)
	}
}

var errNoSubscription = invalidArg("ter:InvalidSubscription", "no such subscription (unsubscribed, expired, or another key's)")

// pullPointOf is the subscription c was sent to, if it is c's user's.
func (s *Server) pullPointOf(c *call) (*pullPoint, error) {
	s.sweep(s.o.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.subs[c.subID]
	if p == nil || p.user != c.user {
		return nil, errNoSubscription
	}
	return p, nil
}

// terminationTime reads an xs:duration or an xs:dateTime ("" : def),
// bounded to [1 s, MaxTermination].
func (s *Server) terminationTime(v string, now time.Time, def time.Duration) (time.Duration, error) {
	d := def
	if v != "" {
		var err error
		if d, err = parseDuration(v); err != nil {
			t, terr := time.Parse(time.RFC3339Nano, v)
			if terr != nil {
				return 0, invalidArg("ter:InvalidTerminationTime", "the termination time "+strconv.Quote(v)+" is neither a duration nor a time")
			}
			d = t.Sub(now)
		}
	}
	return min(max(d, time.Second), s.o.MaxTermination), nil
}

func (s *Server) createPullPoint(c *call, w *writer) error {
	if s.o.Subscribe == nil {
		return actionNotSupported("camd's events service is off")
	}
	now := s.o.Now()
	s.sweep(now)
	keep, err := s.terminationTime(c.req.Action.text("InitialTerminationTime"), now, time.Minute)
	if err != nil {
		return err
	}
	s.mu.Lock()
	mine := 0
	for _, p := range s.subs {
		if p.user == c.user {
			mine++
		}
	}
	full := s.closed || len(s.subs) >= s.o.MaxSubscriptions || mine >= s.o.MaxSubscriptionsPerUser
	s.mu.Unlock()
	if full {
		return &fault{Subcode: []string{"ter:Action", "ter:ResourceProblem"},
			Reason: fmt.Sprintf("too many subscriptions (%d in all, %d per key): unsubscribe or let one expire", s.o.MaxSubscriptions, s.o.MaxSubscriptionsPerUser)}
	}
	sub, err := s.o.Subscribe(c.user, Kinds)
	if err != nil {
		return &fault{Subcode: []string{"ter:Action", "ter:ResourceProblem"}, Reason: err.Error()}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.Close()
		return &fault{Subcode: []string{"ter:Action", "ter:ResourceProblem"}, Reason: "camd is stopping"}
	}
	s.nextID++
	p := &pullPoint{id: s.nextID, user: c.user, sub: sub, keep: keep, lock: make(chan struct{}, 1), expires: now.Add(keep)}
	s.subs[p.id] = p
	s.mu.Unlock()
	s.o.Logger.Info("onvif: subscription created", "id", p.id, "user", p.user, "termination", keep)
	w.open("tev:CreatePullPointSubscriptionResponse").open("tev:SubscriptionReference").
		elem("wsa:Address", c.url(SubscriptionPath+strconv.FormatUint(p.id, 10))).close("tev:SubscriptionReference").
		elem("wsnt:CurrentTime", xsdTime(now)).elem("wsnt:TerminationTime", xsdTime(p.expires)).
		close("tev:CreatePullPointSubscriptionResponse")
	return nil
}

// closedIdle fires at once: Next returns what is queued, or nil.
var closedIdle = func() <-chan time.Time { c := make(chan time.Time); close(c); return c }()

func (s *Server) pullMessages(c *call, w *writer) error {
	p, err := s.pullPointOf(c)
	if err != nil {
		return err
	}
	wait := time.Duration(0)
	if v := c.req.Action.text("Timeout"); v != "" {
		if wait, err = parseDuration(v); err != nil {
			return invalidArg("ter:InvalidArgVal", "Timeout "+strconv.Quote(v)+" is not a duration")
		}
	}
	wait = min(max(wait, 0), s.o.MaxPullTimeout)
	limit, err := strconv.Atoi(c.req.Action.text("MessageLimit"))
	if err != nil || limit < 1 {
		return invalidArg("ter:InvalidArgVal", "MessageLimit must be a whole number from 1")
	}
	limit = min(limit, 100)

	ctx := c.r.Context()
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	got, err := s.pull(ctx, p, wait, limit)
	<-p.lock
	if err != nil {
		s.mu.Lock()
		delete(s.subs, p.id)
		s.mu.Unlock()
		p.sub.Close()
		if errors.Is(err, context.Canceled) {
			return err
		}
		return invalidArg("ter:InvalidSubscription", "the subscription ended: "+err.Error())
	}

	now := s.o.Now()
	s.mu.Lock()
	p.expires = maxTime(p.expires, now.Add(p.keep))
	expires := p.expires
	s.mu.Unlock()
	w.open("tev:PullMessagesResponse").elem("tev:CurrentTime", xsdTime(now)).elem("tev:TerminationTime", xsdTime(expires))
	for _, n := range got {
		n.write(w)
	}
	w.close("tev:PullMessagesResponse")
	return nil
}

// pull gathers up to limit notifications: those left over from the last
// pull, then events as they come, waiting at most wait for the first.
func (s *Server) pull(ctx context.Context, p *pullPoint, wait time.Duration, limit int) ([]notification, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(p.pending) < limit {
		idle := closedIdle
		if len(p.pending) == 0 {
			idle = timer.C
		}
		m, err := p.sub.Next(ctx, idle)
		if err != nil {
			return nil, err
		}
		if m == nil {
			break
		}
		var e eventlog.Event
		if json.Unmarshal(m.JSON, &e) != nil {
			continue
		}
		p.pending = append(p.pending, notifications(e)...)
	}
	n := min(limit, len(p.pending))
	got := p.pending[:n:n]
	p.pending = p.pending[n:]
	return got, nil
}

func (s *Server) renew(c *call, w *writer) error {
	p, err := s.pullPointOf(c)
	if err != nil {
		return err
	}
	now := s.o.Now()
	keep, err := s.terminationTime(c.req.Action.text("TerminationTime"), now, p.keep)
	if err != nil {
		return err
	}
	s.mu.Lock()
	p.keep, p.expires = keep, now.Add(keep)
	expires := p.expires
	s.mu.Unlock()
	w.open("wsnt:RenewResponse").elem("wsnt:TerminationTime", xsdTime(expires)).elem("wsnt:CurrentTime", xsdTime(now)).close("wsnt:RenewResponse")
	return nil
}

func (s *Server) unsubscribe(c *call, w *writer) error {
	p, err := s.pullPointOf(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.subs, p.id)
	s.mu.Unlock()
	p.sub.Close()
	w.empty("wsnt:UnsubscribeResponse")
	return nil
}

// SetSynchronizationPoint: camd's properties have no state to resend
// (motion and the doorbell are told as they change).
func (s *Server) setSynchronizationPoint(c *call, w *writer) error {
	if _, err := s.pullPointOf(c); err != nil && c.subID != 0 {
		return err
	}
	w.empty("tev:SetSynchronizationPointResponse")
	return nil
}

func (s *Server) getEventsServiceCapabilities(c *call, w *writer) error {
	w.open("tev:GetServiceCapabilitiesResponse")
	eventsCaps(w, "tev:Capabilities")
	w.close("tev:GetServiceCapabilitiesResponse")
	return nil
}

// GetEventProperties: the topics camd publishes.
func (s *Server) getEventProperties(c *call, w *writer) error {
	const wstop = "http://docs.oasis-open.org/wsn/t-1"
	w.open("tev:GetEventPropertiesResponse").
		elem("tev:TopicNamespaceLocation", "http://www.onvif.org/onvif/ver10/topics/topicns.xml").
		elem("wsnt:FixedTopicSet", "true").
		open("wstop:TopicSet", "xmlns:wstop", wstop).
		open("tns1:RuleEngine").open("CellMotionDetector").empty("Motion", "wstop:topic", "true").close("CellMotionDetector").
		open("MyRuleDetector").empty("Visitor", "wstop:topic", "true").close("MyRuleDetector").close("tns1:RuleEngine").
		open("tns1:VideoSource").empty("MotionAlarm", "wstop:topic", "true").close("tns1:VideoSource").
		open("tns1:Device").open("Trigger").empty("DigitalInput", "wstop:topic", "true").close("Trigger").close("tns1:Device").
		close("wstop:TopicSet").
		elem("wsnt:TopicExpressionDialect", topicDialect).
		elem("tev:MessageContentFilterDialect", "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter").
		elem("tev:MessageContentSchemaLocation", "http://www.onvif.org/onvif/ver10/schema/onvif.xsd").
		close("tev:GetEventPropertiesResponse")
	return nil
}

var durationRE = regexp.MustCompile(`^P(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6}(?:\.\d{1,9})?)S)?)?$`)

// parseDuration reads the xs:durations clients send (PT60S, PT1M, P1D,
// PT0.5S); years and months are refused.
func parseDuration(v string) (time.Duration, error) {
	m := durationRE.FindStringSubmatch(v)
	if m == nil || v == "P" || v == "PT" {
		return 0, fmt.Errorf("onvif: %q is not a duration", v)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, _ := strconv.ParseFloat(m[4], 64)
		d += time.Duration(f * float64(time.Second))
	}
	return d, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
