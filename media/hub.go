package media

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Consumer.Next once the consumer or its hub is
// closed.
var ErrClosed = errors.New("media: consumer closed")

// HubOptions tunes a Hub. The zero value means defaults.
type HubOptions struct {
	// QueueFrames bounds each consumer's queue (default 256 frames: about
	// three seconds of 30 fps video with its audio).
	QueueFrames int
	// GOPCacheBytes bounds the cache of the last group of pictures that a
	// joining consumer starts from when the source cannot force a keyframe
	// (default 8 MiB). A longer GOP is not cached: joiners wait for the next
	// keyframe instead.
	GOPCacheBytes int
	// OverflowKeyframeGap is the least time between keyframes forced because
	// a consumer overflowed (default 1 s). Keyframes for joining consumers
	// are never delayed.
	OverflowKeyframeGap time.Duration
}

func (o HubOptions) withDefaults() HubOptions {
	if o.QueueFrames <= 0 {
		o.QueueFrames = 256
	}
	if o.GOPCacheBytes <= 0 {
		o.GOPCacheBytes = 8 << 20
	}
	if o.OverflowKeyframeGap <= 0 {
		o.OverflowKeyframeGap = time.Second
	}
	return o
}

// SourceInfo describes the source that is about to publish into a hub.
type SourceInfo struct {
	// Name identifies the source in logs and stats.
	Name string
	// ForcesKeyframes is true when the source encodes itself and honours
	// KeyframeRequested; false for passthrough, where joiners start from the
	// cached group of pictures instead.
	ForcesKeyframes bool
	// RequestKeyframe, for a source that does not encode itself, asks
	// its encoder for a keyframe (passthrough's keyframe_command); nil
	// when it cannot. The hub calls it, with its lock held (it must not
	// block), as a consumer that jumps to live joins or asks for a
	// keyframe: the consumer starts from the cached group of pictures
	// and leaves it for the new keyframe as soon as it comes.
	RequestKeyframe func()
	// Audio is true when the source publishes audio frames (Opus), and
	// G711 when they carry the same sound as G.711 µ-law too
	// (Frame.G711): a source that has the PCM. The RTSP server describes
	// its tracks from these.
	Audio, G711 bool
}

// Hub fans one stream of encoded frames out to many consumers. Each stream
// is encoded once; Publish never blocks on a consumer.
type Hub struct {
	opts HubOptions

	keyRequest    atomic.Bool
	targetBitrate atomic.Int64
	forcedKeys    atomic.Uint64

	mu           sync.Mutex
	info         SourceInfo
	epoch        uint32
	seq          uint64
	consumers    map[*Consumer]struct{}
	gop          []*Frame
	gopBytes     int
	gopValid     bool
	lastKey      *Frame
	lastOverflow time.Time
	closed       bool
	published    uint64
	bytes        uint64
	// gone sums the counters of the consumers that left, by kind.
	gone map[string]ConsumerStats
}

// NewHub returns an empty hub.
func NewHub(opts HubOptions) *Hub {
	return &Hub{opts: opts.withDefaults(), consumers: make(map[*Consumer]struct{})}
}

// Begin tells the hub that a source (re)starts. Frames published after it
// belong to a new epoch: timestamps may restart, so consumers rebase them,
// and every consumer waits for the new source's first keyframe.
func (h *Hub) Begin(info SourceInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.info = info
	h.epoch++
	h.gop, h.gopBytes, h.gopValid = nil, 0, false
	h.lastKey = nil
	for c := range h.consumers {
		c.mu.Lock()
		c.waitKey, c.jumpPending = true, false
		c.mu.Unlock()
	}
	if info.ForcesKeyframes {
		h.keyRequest.Store(false)
	}
}

// Info returns what the current source declared in Begin.
func (h *Hub) Info() SourceInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.info
}

// Publish hands one frame to every consumer. The hub sets the frame's Seq;
// the frame must not be modified afterwards.
func (h *Hub) Publish(f *Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	h.published++
	h.bytes += uint64(len(f.Data))
	f.Seq = h.seq
	f.epoch = h.epoch
	if f.Kind == Video {
		h.cacheGOP(f)
	}
	wantKey := false
	for c := range h.consumers {
		if c.offer(f) {
			wantKey = true
		}
	}
	if now := time.Now(); wantKey && now.Sub(h.lastOverflow) >= h.opts.OverflowKeyframeGap {
		h.lastOverflow = now
		h.askKeyframe()
	}
}

// cacheGOP keeps the frames since the last keyframe. It allocates a new
// slice at each keyframe because consumers may still hold the old one.
func (h *Hub) cacheGOP(f *Frame) {
	if f.Key {
		h.lastKey = f
		h.gop = make([]*Frame, 0, max(len(h.gop), 64))
		h.gopBytes = 0
		h.gopValid = true
	}
	if !h.gopValid {
		return
	}
	h.gopBytes += len(f.Data)
	if h.gopBytes > h.opts.GOPCacheBytes || len(h.gop) >= h.opts.QueueFrames/2 {
		h.gop, h.gopBytes, h.gopValid = nil, 0, false
		return
	}
	h.gop = append(h.gop, f)
}

// LastKeyframe returns the newest keyframe of the current source, or nil
// before its first one.
func (h *Hub) LastKeyframe() *Frame {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastKey
}

// KeyframeRequested reports, and clears, whether a consumer asked for a
// keyframe since the last call. An encoding source calls it before each
// frame, so requests from viewers arriving together become one IDR.
func (h *Hub) KeyframeRequested() bool {
	if h.keyRequest.Swap(false) {
		h.forcedKeys.Add(1)
		return true
	}
	return false
}

// SetTargetBitrate asks an encoding source for a new bitrate in bits per
// second; 0 means the source's configured default.
func (h *Hub) SetTargetBitrate(bps int) { h.targetBitrate.Store(int64(bps)) }

// TargetBitrate returns the last bitrate set by SetTargetBitrate.
func (h *Hub) TargetBitrate() int { return int(h.targetBitrate.Load()) }

// ConsumerOptions configure a consumer. The zero value means defaults.
type ConsumerOptions struct {
	// Name identifies the consumer in stats.
	Name string
	// QueueFrames overrides the hub's queue bound for this consumer.
	QueueFrames int
	// Notify, when set, also receives a token (without blocking: give it
	// a buffer of one) whenever a frame is queued or the consumer closes,
	// so that one goroutine can serve many consumers with TryNext; a
	// channel may be shared by many consumers.
	Notify chan struct{}
	// JumpToLive: when the source can be asked for a keyframe
	// (SourceInfo.RequestKeyframe), the hub asks for one as the consumer
	// joins (or calls RequestKeyframe) and, when a keyframe comes, drops
	// the video the consumer has not read yet (the rest of the replayed
	// group of pictures, and what queued behind it) to go on from it: a
	// viewer is live once the encoder has made the keyframe instead of
	// once the replay is decoded. A recorder, which wants every frame,
	// leaves it false.
	JumpToLive bool
}

// Subscribe adds a consumer. It starts at a keyframe: for an encoding
// source the hub asks for one at once (requests from consumers joining
// together are coalesced); otherwise the consumer first receives the cached
// group of pictures, marked as replayed, and one that jumps to live
// (ConsumerOptions.JumpToLive) leaves it for the keyframe the source is
// asked for, if it can be (SourceInfo.RequestKeyframe).
func (h *Hub) Subscribe(opts ConsumerOptions) *Consumer {
	n := opts.QueueFrames
	if n <= 0 {
		n = h.opts.QueueFrames
	}
	c := &Consumer{
		hub:    h,
		name:   opts.Name,
		queue:  make([]entry, n),
		signal: make(chan struct{}, 1),
		notify: opts.Notify,
		jump:   opts.JumpToLive,
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.closed = true
		return c
	}
	h.startAtKeyframe(c)
	h.consumers[c] = struct{}{}
	return c
}

// startAtKeyframe must be called with h.mu held.
func (h *Hub) startAtKeyframe(c *Consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.head, c.n = 0, 0
	c.jumpPending = false
	if h.info.ForcesKeyframes || !h.gopValid || len(h.gop) == 0 {
		c.waitKey = true
		if h.info.ForcesKeyframes || c.jump {
			h.askKeyframe()
		}
		return
	}
	c.waitKey = false
	for _, f := range h.gop {
		c.push(entry{f: f, replay: true})
	}
	c.jumpPending = c.jump && h.askKeyframe()
	c.wake()
}

// AskKeyframe asks the source for a keyframe for all its consumers (an
// ONVIF client's SetSynchronizationPoint): an encoding source makes an
// IDR, and a source that does not encode is asked if it can be
// (SourceInfo.RequestKeyframe). It reports whether the source was asked.
func (h *Hub) AskKeyframe() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.askKeyframe()
}

// askKeyframe asks the source for a keyframe, if it can be asked: an
// encoding source through KeyframeRequested (which counts it), another
// through SourceInfo.RequestKeyframe. Called with h.mu held.
func (h *Hub) askKeyframe() bool {
	switch {
	case h.info.ForcesKeyframes:
		h.keyRequest.Store(true)
	case h.info.RequestKeyframe != nil:
		h.forcedKeys.Add(1)
		h.info.RequestKeyframe()
	default:
		return false
	}
	return true
}

// Stats is a snapshot of a hub's counters.
type Stats struct {
	Source    string
	Published uint64
	// PublishedBytes is the frames' payload bytes.
	PublishedBytes uint64
	ForcedKeys     uint64
	Consumers      []ConsumerStats
	// ByKind sums the counters of every consumer since the hub began,
	// those that left included, by kind (the first word of their name:
	// "viewer", "recorder"); Queued counts only those still there.
	ByKind         map[string]ConsumerStats
	TargetBitrate  int
	GOPCacheFrames int
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{
		Source:         h.info.Name,
		Published:      h.published,
		PublishedBytes: h.bytes,
		ForcedKeys:     h.forcedKeys.Load(),
		TargetBitrate:  h.TargetBitrate(),
		GOPCacheFrames: len(h.gop),
		ByKind:         make(map[string]ConsumerStats, len(h.gone)+1),
	}
	for k, g := range h.gone {
		s.ByKind[k] = g
	}
	for c := range h.consumers {
		cs := c.Stats()
		s.Consumers = append(s.Consumers, cs)
		s.ByKind[cs.Kind()] = s.ByKind[cs.Kind()].add(cs)
	}
	return s
}

// Kind is the first word of the consumer's name ("viewer", "recorder"),
// or "other" for a consumer without a name.
func (s ConsumerStats) Kind() string {
	k, _, _ := strings.Cut(s.Name, " ")
	if k == "" {
		return "other"
	}
	return k
}

func (s ConsumerStats) add(o ConsumerStats) ConsumerStats {
	s.Name = o.Kind()
	s.Delivered += o.Delivered
	s.Dropped += o.Dropped
	s.Skipped += o.Skipped
	s.Queued += o.Queued
	return s
}

// Close closes every consumer; later Publish calls are ignored.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for c := range h.consumers {
		c.close()
	}
	clear(h.consumers)
}

func (h *Hub) remove(c *Consumer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.consumers[c]; !ok {
		return
	}
	delete(h.consumers, c)
	cs := c.Stats()
	cs.Queued = 0
	if h.gone == nil {
		h.gone = make(map[string]ConsumerStats)
	}
	h.gone[cs.Kind()] = h.gone[cs.Kind()].add(cs)
}

type entry struct {
	f      *Frame
	replay bool
}

// Consumer receives a hub's frames through a bounded queue.
type Consumer struct {
	hub    *Hub
	name   string
	signal chan struct{}
	notify chan struct{} // ConsumerOptions.Notify

	mu      sync.Mutex
	queue   []entry
	head, n int
	waitKey bool
	lost    bool // waitKey because frames were dropped
	// jump is ConsumerOptions.JumpToLive; jumpPending: a keyframe was
	// asked for it, and the next one drops the video still queued.
	jump, jumpPending bool
	closed            bool
	delivered         uint64
	dropped           uint64
	skipped           uint64
}

// ConsumerStats counts what happened to the frames offered to a consumer.
type ConsumerStats struct {
	Name string
	// Delivered frames were returned by Next.
	Delivered uint64
	// Dropped frames did not fit in the queue, or were video frames that
	// followed a dropped one and came before the next keyframe.
	Dropped uint64
	// Skipped video frames came before the consumer's first keyframe, or
	// were left unread when it jumped to a keyframe asked for
	// (ConsumerOptions.JumpToLive).
	Skipped uint64
	// Queued frames are waiting to be read.
	Queued int
}

// offer queues f, or drops it. It reports whether the consumer overflowed
// and now needs a keyframe. Called with the hub's lock held.
func (c *Consumer) offer(f *Frame) (overflow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if f.Kind == Video && c.waitKey {
		if !f.Key {
			if c.lost {
				c.dropped++
			} else {
				c.skipped++
			}
			return false
		}
		c.waitKey = false
	}
	if f.Kind == Video && f.Key && c.jumpPending {
		c.jumpPending = false
		c.dropVideo()
	}
	if c.n == len(c.queue) {
		c.dropped++
		if f.Kind == Video {
			c.waitKey, c.lost = true, true
			return true
		}
		return false
	}
	if f.Kind == Video {
		c.lost = false
	}
	c.push(entry{f: f})
	c.wake()
	return false
}

// dropVideo drops the video frames queued, keeping the audio, for a
// consumer that jumps to a keyframe; they count as skipped.
func (c *Consumer) dropVideo() {
	kept := 0
	for i := range c.n {
		e := c.queue[(c.head+i)%len(c.queue)]
		if e.f.Kind == Video {
			c.skipped++
			continue
		}
		c.queue[(c.head+kept)%len(c.queue)] = e
		kept++
	}
	for i := kept; i < c.n; i++ {
		c.queue[(c.head+i)%len(c.queue)] = entry{}
	}
	c.n = kept
}

func (c *Consumer) push(e entry) {
	if c.n == len(c.queue) {
		return
	}
	c.queue[(c.head+c.n)%len(c.queue)] = e
	c.n++
}

func (c *Consumer) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
	if c.notify != nil {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// Next returns the next frame, waiting for one. replay is true for frames
// from the cached group of pictures that the consumer started with: they
// are older than live and should be shown at once.
func (c *Consumer) Next(ctx context.Context) (f *Frame, replay bool, err error) {
	for {
		f, replay, err := c.TryNext()
		if f != nil || err != nil {
			return f, replay, err
		}
		select {
		case <-c.signal:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// TryNext returns the next frame without waiting: nil when none is
// queued, and ErrClosed once the consumer or its hub is closed.
func (c *Consumer) TryNext() (f *Frame, replay bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		e := c.queue[c.head]
		c.queue[c.head] = entry{}
		c.head = (c.head + 1) % len(c.queue)
		c.n--
		c.delivered++
		return e.f, e.replay, nil
	}
	if c.closed {
		return nil, false, ErrClosed
	}
	return nil, false, nil
}

// RequestKeyframe asks for a fresh start point after the consumer's
// decoder lost its way (a viewer's PLI or FIR): an encoding source makes an
// IDR; otherwise the consumer's queue restarts from the cached group of
// pictures (and a consumer that jumps to live asks the source for a
// keyframe, as when it joined).
func (c *Consumer) RequestKeyframe() {
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.consumers[c]; !ok {
		return // closed, or its hub is
	}
	if h.info.ForcesKeyframes {
		h.askKeyframe()
		return
	}
	h.startAtKeyframe(c)
}

// Epoch tells frames of different source runs apart: it changes when the
// source restarts and its timestamps may start again from zero.
func (f *Frame) Epoch() uint32 { return f.epoch }

// Len is the number of frames waiting in the consumer's queue.
func (c *Consumer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ConsumerStats{Name: c.name, Delivered: c.delivered, Dropped: c.dropped, Skipped: c.skipped, Queued: c.n}
}

// Close removes the consumer from its hub. It is safe to call twice.
func (c *Consumer) Close() {
	c.hub.remove(c)
	c.close()
}

func (c *Consumer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.head, c.n = 0, 0
	clear(c.queue)
	c.wake()
}
