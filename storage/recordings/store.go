package recordings

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/durable"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/volume"
)

// Errors of the store.
var (
	// ErrPaused: recording is paused because the card cannot be written;
	// the store retries by itself.
	ErrPaused = errors.New("recordings: recording paused")
	// ErrRange: the time range is empty or reversed.
	ErrRange = errors.New("recordings: bad time range")
	// ErrNoRecording: nothing was recorded in the range.
	ErrNoRecording = errors.New("recordings: nothing recorded in the range")
	// ErrTooLong: the range holds more than an export may.
	ErrTooLong = errors.New("recordings: range too long to export")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("recordings: store closed")
	// ErrBusy: as many clips as Options.MaxReaders are being read
	// (exports and playbacks); try again once one is closed.
	ErrBusy = errors.New("recordings: too many exports and playbacks at once")
	// ErrFragment: Append refused a fragment the store cannot hold (out
	// of range, too large); recording goes on.
	ErrFragment = errors.New("recordings: fragment refused")
	// ErrUnexpected marks an error the store does not know: neither the
	// system's (an errno: the card full, read-only, missing or failing)
	// nor one of the volumes (damaged, foreign, newer). It is not taken
	// for the card's: it pauses recording as "unexpected error" and is
	// logged as an error, a bug to report rather than a card to replace.
	ErrUnexpected = errors.New("recordings: unexpected error")
)

// MinVolumeSize is the smallest volume a store makes, whatever the quota.
const MinVolumeSize = 1 << 20

// Event is something the owner should hear about: a quarantined volume,
// recording paused or resumed.
type Event struct {
	Kind    string
	Message string
	Data    map[string]string
}

// Event kinds.
const (
	EventQuarantined = "recording.quarantined"
	EventMissing     = "recording.volume_missing"
	EventForeign     = "recording.foreign_file"
	EventPaused      = "recording.paused"
	EventResumed     = "recording.resumed"
)

// Options tune Open. The zero value means defaults, except Dir.
type Options struct {
	// Dir holds the volumes; it is created if missing at Open.
	Dir string
	// VolumeSize bounds each volume (default 256 MiB); a quota smaller
	// than four volumes shrinks the volumes to a quarter of it (but not
	// below 1 MiB).
	VolumeSize int64
	// Quota bounds the bytes kept (default 10% of the file system).
	Quota Quota
	// RetryPause is how long recording stays paused after a write error
	// before the store tries again (default 5 s).
	RetryPause time.Duration
	// MaxExport bounds the recorded time one clip (an export, a
	// playback) may hold (default 24 h).
	MaxExport time.Duration
	// MaxReaders bounds the clips open at once (exports and playbacks
	// being read); Clip fails with ErrBusy beyond it. Each maps at most
	// one volume at a time, so the default, as many volumes of
	// VolumeSize as fit in 1 GiB but at most 4 (4 of the default
	// 256 MiB), keeps a 32-bit process's address space safe.
	MaxReaders int
	// Card, when set, is the card that Dir is on (recording.require_mount):
	// the store records only while the card is mounted and can be
	// written, looks at it every CardPoll (default 1 s), never makes Dir
	// while it is missing (that would be on the device's own storage),
	// and lets go of its files when it goes. Without it, Dir is made at
	// Open if missing, and never again.
	Card cardWatch
	// CardPoll is how often the store looks at the card.
	CardPoll time.Duration
	// EraseMark, when that file exists, says Dir holds a former owner's
	// recordings: a factory reset ran while the card was out of the
	// camera. The first time the store finds Dir (the card back), it
	// erases every file of its own there (Files) before it looks at
	// them, then removes the mark.
	EraseMark string
	// NoSync skips fsync (tests of everything else only).
	NoSync bool
	// Notify receives events (nil drops them). It must not block.
	Notify func(Event)
	Logger *slog.Logger
}

// Fragment is what the recorder appends: bytes the store keeps as they
// are, with what its index needs to know of them.
type Fragment struct {
	Stream   uint32
	Start    time.Time
	Duration time.Duration
	// Key: playback can start here. Audio: it has audio samples.
	Key, Audio bool
	// Init is the init segment the fragment needs; it is stored again
	// only when it changes.
	Init []byte
	// Data is the fragment (a moof and its mdat, to the recorder and
	// exports; bytes to the store).
	Data []byte
}

// Span is a stretch of continuous recording of a stream.
type Span struct {
	Stream uint32    `json:"stream"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// Volume states in the catalog.
const (
	stateActive      = "active"
	stateClosed      = "closed"
	stateQuarantined = "quarantined"
	// stateCreating: the volume is being made in its file (see create).
	stateCreating = "creating"
	// stateReady: the volume is made, empty, its stream's next: it is
	// written once the one before it is full (prepareNext). A start
	// takes it for active.
	stateReady = "ready"
)

// vol is a volume's catalog record.
type vol struct {
	ID   uint64 `json:"id"`
	File string `json:"file"`
	// Stream is the stream the volume is written for: each stream has
	// volumes of its own (see victim). Records written before volumes
	// were per stream have none: they count as stream 1's (a camera's
	// own), which they held on a camera.
	Stream  uint32    `json:"stream,omitempty"`
	State   string    `json:"state"`
	Bytes   int64     `json:"bytes"`
	Created time.Time `json:"created"`
	Spans   []Span    `json:"spans,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	// Rescan: the volume was closed without its spans read from it (it
	// was written until a crash, or could not be read); they are rebuilt
	// from it at the next start.
	Rescan bool `json:"rescan,omitempty"`
}

// inUse reports whether the volume is being written, made or ready to
// be written: retention leaves it alone.
func (v *vol) inUse() bool {
	return v.State == stateActive || v.State == stateCreating || v.State == stateReady
}

func (v *vol) first() time.Time {
	if len(v.Spans) == 0 {
		return time.Time{}
	}
	return v.Spans[0].Start
}

// Store is the ring of recording volumes.
type Store struct {
	opts Options
	cat  *storage.Catalog
	log  *slog.Logger

	// writeMu serialises appends, rotations and deletions.
	writeMu sync.Mutex
	// recovered: the directory was reconciled with the catalog (recover)
	// since the store opened or the card came back. Guarded by writeMu.
	recovered bool
	// handleMu guards the handles of the volumes being written: readers
	// hold it shared while they read, rotation exclusively while it
	// closes a handle.
	handleMu sync.RWMutex
	writers  map[uint32]*writer // per stream, its volume being written

	// next holds, per stream, its next volume being made or made
	// beforehand (prepareNext); bgLast is closed once the background
	// jobs started so far (background) ended. Guarded by writeMu.
	next   map[uint32]*prep
	bgLast chan struct{}
	// bgHook, when set (tests), is called at the start of each
	// background job with its kind ("prepare", "switch").
	bgHook func(kind string)

	// readers holds a token per open clip (Options.MaxReaders).
	readers chan struct{}

	// mu guards the index below; it is never held during disk I/O.
	mu         sync.Mutex
	vols       []*vol // ascending ID
	nextID     uint64
	quota      int64
	volumeSize int64
	paused     error
	retryAt    time.Time
	closed     bool
	// card is the card as last seen (Options.Card); cardErr why it cannot
	// be used now (recording stays paused without retries until the
	// card is back); held what is done to it (Hold: "checking",
	// "formatting"); lastErr the last error of the card or a write.
	card    card.State
	cardErr error
	held    string
	lastErr string
	// shares are the streams' shares of the quota set by SetShare.
	shares map[uint32]float64
	// dropLater lists the volumes deleted whose records a failed catalog
	// update left: every catalog update drops them.
	dropLater []uint64
	clips     map[*Clip]struct{} // open clips, closed by Close
	pins      map[uint64]int     // volumes that open clips read: not reused
	stats     Stats
	// pendingDrops: deletions of streams are left to finish (see
	// DeleteStream). Guarded by mu.
	pendingDrops bool
	// noReuse makes every volume in a new file (benchmarks of the ring
	// against its absence).
	noReuse bool

	// cardMu serialises looking at the card (checkCard); stop ends the
	// goroutine that does it every CardPoll, watching it.
	cardMu   sync.Mutex
	stop     chan struct{}
	watching sync.WaitGroup
}

// writer is the volume being written for a stream.
type writer struct {
	v    *volume.Volume
	init []byte // the last init segment written in v
	// file is v's file, to tell that the card it is on went away.
	file os.FileInfo
}

// Stats is a store's state and counters.
type Stats struct {
	Volumes     int   `json:"volumes"`
	Quarantined int   `json:"quarantined"`
	Bytes       int64 `json:"bytes"`
	Quota       int64 `json:"quota_bytes"`
	VolumeSize  int64 `json:"volume_bytes"`
	FreeBytes   int64 `json:"free_bytes"`
	// TotalBytes is the size of the file system; OthersBytes what other
	// files than the store's use of it.
	TotalBytes  int64     `json:"total_bytes"`
	OthersBytes int64     `json:"others_bytes"`
	Oldest      time.Time `json:"oldest,omitzero"`
	Newest      time.Time `json:"newest,omitzero"`
	Paused      string    `json:"paused,omitempty"`
	Fragments   uint64    `json:"fragments_written"`
	Written     int64     `json:"bytes_written"`
	Dropped     uint64    `json:"fragments_dropped"`
	Deleted     uint64    `json:"volumes_deleted"`
	// Card is the card's state (Options.Card), nil without one.
	Card *CardStatus `json:"card,omitempty"`
}

var volPrefix = []byte("vol/")

func volKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(volPrefix), id)
}

func volFile(id uint64) string { return fmt.Sprintf("vol-%016x.db", id) }

// quarantineDir holds the files found where volumes belong that are not
// camd volumes (moveAside).
const quarantineDir = "quarantine"

// Files lists what a store keeps in dir, as filepath.Glob patterns: its
// volumes (under FAT's short names too) and the quarantine directory. A
// factory reset erases exactly these; other files in dir are not the
// store's.
func Files(dir string) []string {
	return []string{
		filepath.Join(dir, "vol-"+strings.Repeat("[0-9a-f]", 16)+".db"),
		filepath.Join(dir, shortName),
		filepath.Join(dir, quarantineDir),
	}
}

// mkdir makes dir if it is missing, and its name durable: fsynced in
// its parent.
func mkdir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(dir))
}

func parseVolFile(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, "vol-")
	if !ok {
		return 0, false
	}
	hex, ok = strings.CutSuffix(hex, ".db")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

// Open opens the store in opts.Dir, indexed in cat, and recovers from
// whatever a crash or a bad card left behind. It fails only on a bad
// option: trouble with the card pauses recording instead.
func Open(cat *storage.Catalog, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("recordings: no directory")
	}
	if opts.VolumeSize <= 0 {
		opts.VolumeSize = volume.DefaultMaxSize
	}
	if opts.Quota.Bytes == 0 && opts.Quota.Percent == 0 {
		opts.Quota.Percent = 10
	}
	if opts.Quota.Bytes < 0 || opts.Quota.Percent < 0 || opts.Quota.Percent > 100 {
		return nil, fmt.Errorf("%w: %v", ErrQuota, opts.Quota)
	}
	if opts.RetryPause <= 0 {
		opts.RetryPause = 5 * time.Second
	}
	if opts.MaxExport <= 0 {
		opts.MaxExport = 24 * time.Hour
	}
	if opts.MaxReaders <= 0 {
		opts.MaxReaders = int(max(1, min(4, (1<<30)/opts.VolumeSize)))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(Event) {}
	}
	if opts.CardPoll <= 0 {
		opts.CardPoll = time.Second
	}
	s := &Store{opts: opts, cat: cat, log: opts.Logger, nextID: 1, writers: map[uint32]*writer{}, next: map[uint32]*prep{}, shares: map[uint32]float64{},
		readers: make(chan struct{}, opts.MaxReaders), clips: map[*Clip]struct{}{}, pins: map[uint64]int{}}
	if err := s.prepare(true); err != nil {
		s.pause(err)
	}
	if opts.Card != nil {
		s.stop = make(chan struct{})
		s.watching.Go(s.watchCard)
	}
	return s, nil
}

// prepare makes the volumes' directory if the store may, and reconciles
// it with the catalog (recover). On a card, only while the card is
// there: without one, the recordings are listed as the catalog has them,
// and nothing is made. Without a card, the directory is made only when
// the store opens.
func (s *Store) prepare(opening bool) error {
	if s.opts.Card != nil {
		st := s.opts.Card.State()
		s.mu.Lock()
		s.card = st
		if st.Err != nil {
			s.cardErr = st.Err
		}
		s.mu.Unlock()
		if st.Err != nil {
			if opening {
				s.loadIndex()
			}
			return st.Err
		}
	}
	if opening || s.opts.Card != nil {
		if err := mkdir(s.opts.Dir); err != nil {
			if opening {
				s.loadIndex()
			}
			return fmt.Errorf("recordings: %w", err)
		}
	}
	if err := s.eraseFormerOwner(); err != nil {
		return err
	}
	s.sizeQuota()
	if err := s.recover(); err != nil {
		return err
	}
	// Deletions of streams a crash interrupted; recovery may have read
	// the streams' spans again from the volumes.
	s.finishDeletions()
	return nil
}

// eraseFormerOwner erases what the store keeps in Dir while
// Options.EraseMark exists, then the mark: a card that was out of the
// camera at a factory reset gives none of its former owner's recordings
// to the new one.
func (s *Store) eraseFormerOwner() error {
	if s.opts.EraseMark == "" {
		return nil
	}
	if _, err := os.Stat(s.opts.EraseMark); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	erased := 0
	for _, pat := range Files(s.opts.Dir) {
		matches, _ := filepath.Glob(pat)
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("recordings: erasing a former owner's recordings: %w", err)
			}
			erased++
		}
	}
	if err := durable.SyncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("recordings: erasing a former owner's recordings: %w", err)
	}
	if err := os.Remove(s.opts.EraseMark); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recordings: erasing a former owner's recordings: %w", err)
	}
	durable.SyncDir(filepath.Dir(s.opts.EraseMark))
	s.log.Warn("recordings: erased the recordings of the card's former owner (a factory reset ran while it was out)",
		"files", erased, "dir", s.opts.Dir)
	return nil
}

// loadIndex lists the volumes as the catalog has them, without looking
// at the card (it is not there): the timeline shows what it held.
func (s *Store) loadIndex() {
	recs, err := s.readRecords()
	if err != nil {
		s.log.Warn("recordings: cannot read the recording index", "err", err)
		return
	}
	slices.SortFunc(recs, func(a, b *vol) int { return cmp.Compare(a.ID, b.ID) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.nextID = max(s.nextID, r.ID+1)
	}
	s.vols = recs
}

// sizeQuota works out the quota in bytes and the volume size from it.
func (s *Store) sizeQuota() {
	q := s.opts.Quota.Bytes
	if s.opts.Quota.Percent > 0 {
		total, _, _, err := fsSpace(s.opts.Dir)
		if err != nil {
			s.log.Warn("recordings: cannot size the file system", "dir", s.opts.Dir, "err", err)
		}
		q = int64(float64(total) * s.opts.Quota.Percent / 100)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = q
	s.volumeSize = max(min(s.opts.VolumeSize, q/4), MinVolumeSize)
}

func (s *Store) notify(kind, msg string, kv ...string) {
	data := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i]] = kv[i+1]
	}
	s.log.Warn(msg, "event", kind, "data", data)
	s.opts.Notify(Event{Kind: kind, Message: msg, Data: data})
}

// recover loads the catalog's volume list and reconciles it with the
// directory: missing volumes are dropped, orphans adopted, removed when
// a power cut interrupted their creation, or moved aside, a volume being
// made is made again, and the volume that was being written is checked.
func (s *Store) recover() error {
	s.dropPrepared()
	recs, err := s.readRecords()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	// Volume numbers only grow: past every record and every file name.
	byID := map[uint64]*vol{}
	listed := map[string]bool{}
	for _, r := range recs {
		byID[r.ID] = r
		listed[r.File] = true
		s.nextID = max(s.nextID, r.ID+1)
	}
	onDisk := map[string]bool{}
	var orphans []string
	for _, e := range entries {
		if !ownName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		onDisk[e.Name()] = true
		if id, ok := parseVolFile(e.Name()); ok {
			s.nextID = max(s.nextID, id+1)
		}
		if !listed[e.Name()] {
			orphans = append(orphans, e.Name())
		}
	}
	// Adopt orphans: a volume created just before a crash, one listed in
	// a catalog that was lost, or one whose long name FAT lost.
	slices.Sort(orphans)
	var adopted, changed []*vol
	for _, name := range orphans {
		r, found := s.adopt(name, byID, onDisk)
		switch {
		case found != nil:
			s.log.Warn("recordings: a volume was found under another name", "volume", found.File, "file", name)
			found.File = name
			changed = append(changed, found)
		case r != nil:
			byID[r.ID] = r
			adopted = append(adopted, r)
			s.nextID = max(s.nextID, r.ID+1)
		}
	}
	var drop []uint64
	var keep []*vol
	for _, r := range recs {
		if r.State == stateReady {
			// Made beforehand, and written from the moment the one
			// before it was full: its record says so only since the
			// next save.
			r.State = stateActive
			changed = append(changed, r)
		}
		switch {
		case onDisk[r.File]:
			keep = append(keep, r)
			continue
		case r.State == stateCreating:
			// Cut before its name reached the card: nothing was
			// recorded in it.
			s.log.Info("recordings: a volume whose creation was interrupted is gone", "volume", r.File)
		default:
			s.notify(EventMissing, "recordings: a volume listed in the catalog is missing; its recordings are lost",
				"volume", r.File, "first", r.first().Format(time.RFC3339))
		}
		drop = append(drop, r.ID)
	}
	keep = append(keep, adopted...)
	slices.SortFunc(keep, func(a, b *vol) int { return cmp.Compare(a.ID, b.ID) })

	// A volume being made is made again if it is its stream's newest;
	// another (none, but for a catalog changed by hand) holds nothing:
	// removed.
	for i := 0; i < len(keep); i++ {
		if r := keep[i]; r.State == stateCreating && !newestOf(keep, i) {
			if err := volume.Remove(filepath.Join(s.opts.Dir, r.File)); err != nil {
				s.log.Warn("recordings: cannot remove an unfinished volume", "file", r.File, "err", err)
				continue
			}
			drop = append(drop, r.ID)
			keep = slices.Delete(keep, i, i+1)
			i--
		}
	}

	// Only each stream's newest volume may be written; any other
	// "active" one (two after a crash in the middle of a rotation) is
	// closed. Its record holds the spans of its last save, not what was
	// written since: they are rebuilt from the volume, now or, if the
	// card cannot read it, at a later start.
	for i, r := range keep {
		if r.State == stateActive && !newestOf(keep, i) {
			r.State, r.Rescan = stateClosed, true
			changed = append(changed, r)
		}
	}
	for _, r := range keep {
		if r.State == stateClosed && r.Rescan && !slices.Contains(adopted, r) && s.rescan(r) && !slices.Contains(changed, r) {
			changed = append(changed, r)
		}
	}
	var cardErr error
	var creating []*vol
	for _, last := range keep {
		if last.State == stateCreating {
			creating = append(creating, last)
		}
		if last.State != stateActive {
			continue
		}
		if err := s.openActive(last); err != nil {
			if last.State == stateActive {
				// The card, not the volume: it is left alone and
				// recording pauses until a retry can read it.
				cardErr = cmpFirst(cardErr, err)
			} else {
				changed = append(changed, last)
			}
		}
	}
	for _, r := range keep {
		if r.State != stateActive {
			if fi, err := os.Stat(filepath.Join(s.opts.Dir, r.File)); err == nil {
				r.Bytes = fi.Size()
			}
		}
	}
	changed = append(changed, adopted...)
	if err := s.saveRecords(changed, drop); err != nil {
		return err
	}
	s.mu.Lock()
	s.vols = keep
	s.mu.Unlock()
	s.recovered = true
	for _, r := range creating {
		// Finish what a power cut interrupted (the card's errors pause
		// recording; the retry finishes it).
		if err := s.completeWithRoom(r, leftFile); err != nil {
			return err
		}
	}
	return cardErr
}

// newestOf reports whether recs[i] is the newest record of its stream
// in recs (ascending ID).
func newestOf(recs []*vol, i int) bool {
	for _, r := range recs[i+1:] {
		if r.Stream == recs[i].Stream {
			return false
		}
	}
	return true
}

// readRecords reads the volumes' records from the catalog, but for those
// of volumes deleted already (dropLater).
func (s *Store) readRecords() ([]*vol, error) {
	s.mu.Lock()
	gone := slices.Clone(s.dropLater)
	s.mu.Unlock()
	var recs []*vol
	err := s.cat.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(storage.BucketRecordings).Cursor()
		for k, v := c.Seek(volPrefix); k != nil && bytes.HasPrefix(k, volPrefix); k, v = c.Next() {
			var r vol
			if err := json.Unmarshal(v, &r); err != nil || !ownName(r.File) {
				s.log.Warn("recordings: unreadable catalog record dropped", "key", fmt.Sprintf("%x", k))
				continue
			}
			if r.Stream == 0 {
				r.Stream = 1
			}
			if !slices.Contains(gone, r.ID) {
				recs = append(recs, &r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCatalog, err)
	}
	return recs, nil
}

// adopt examines a file named like camd's that the catalog does not list.
// It returns its new record, or the record of the volume it holds when
// that volume's file is missing (FAT kept its short name only), or
// neither when it removed the file, moved it aside or left it alone.
func (s *Store) adopt(name string, byID map[uint64]*vol, onDisk map[string]bool) (adopted, found *vol) {
	path := filepath.Join(s.opts.Dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil
	}
	// What the name says, until the volume says otherwise; a short name
	// says nothing.
	id, named := parseVolFile(name)
	if !named || byID[id] != nil {
		id = s.nextID
		s.nextID++
	}
	v, spans, err := scan(path, volume.Options{ReadOnly: true}, false)
	switch k := classify(err); {
	case err == nil:
	case k == foreign && (volume.Unfinished(path) || isShortName(name)):
		// A volume whose creation a power cut interrupted: nothing was
		// recorded in it. Files with FAT's short names of camd's are
		// camd's: no other program names files so in its directory.
		s.log.Info("recordings: removing an unfinished volume", "file", name)
		if err := volume.Remove(path); err != nil {
			s.log.Warn("recordings: cannot remove an unfinished volume", "file", name, "err", err)
		}
		return nil, nil
	case k == foreign:
		s.moveAside(path, err)
		return nil, nil
	case k.card(), k == unexpected:
		// A read error is not damage: the spans are read at a later
		// start.
		s.unreadable(k, "recordings: a volume missing from the catalog cannot be read; adopted, its recordings listed once it can",
			"file", name, "err", err)
		return &vol{ID: id, File: name, State: stateClosed, Bytes: fi.Size(), Created: fi.ModTime(), Rescan: true, Stream: 1}, nil
	default:
		s.notify(EventQuarantined, "recordings: a damaged volume was found and quarantined",
			"volume", name, "reason", err.Error())
		return &vol{ID: id, File: name, State: stateQuarantined, Bytes: fi.Size(), Created: fi.ModTime(), Reason: err.Error(), Stream: 1}, nil
	}
	if r := byID[v.ID()]; r != nil {
		if !onDisk[r.File] {
			return nil, r
		}
		s.moveAside(path, fmt.Errorf("it holds volume %d, which %s holds", v.ID(), r.File))
		return nil, nil
	}
	r := &vol{ID: v.ID(), File: name, State: stateClosed, Bytes: fi.Size(), Created: v.Created(), Spans: spans, Stream: 1}
	if len(spans) > 0 {
		r.Stream = spans[0].Stream
	}
	s.log.Info("recordings: adopted a volume missing from the catalog", "file", name, "spans", len(r.Spans))
	return r, nil
}

// unreadable logs that a volume could not be read, as a warning for the
// card's errors and as an error for an unexpected one.
func (s *Store) unreadable(k trouble, msg string, kv ...any) {
	if k == unexpected {
		s.log.Error(msg, append(kv, "kind", "unexpected error: please report")...)
		return
	}
	s.log.Warn(msg, kv...)
}

// scan checks the volume at path, opens it with opts and rebuilds its
// spans from it. keep leaves the handle open (the writer's); otherwise it
// is returned closed, its ID and creation time still readable.
func scan(path string, opts volume.Options, keep bool) (*volume.Volume, []Span, error) {
	if err := volume.Check(path, volume.Options{}); err != nil {
		return nil, nil, err
	}
	v, err := volume.Open(path, opts)
	if err != nil {
		return nil, nil, err
	}
	spans, err := scanSpans(v)
	if err != nil || !keep {
		v.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	return v, spans, nil
}

// rescan rebuilds the spans of a closed volume whose record may lack
// some (see recover). It reports whether the record changed: not when
// the card still cannot read the volume.
func (s *Store) rescan(r *vol) bool {
	_, spans, err := scan(filepath.Join(s.opts.Dir, r.File), volume.Options{ReadOnly: true}, false)
	switch k := classify(err); {
	case err == nil:
		r.Spans, r.Rescan = spans, false
	case k.card(), k == unexpected:
		s.unreadable(k, "recordings: cannot read a volume to list its recordings; trying again at the next start",
			"file", r.File, "err", err)
		return false
	case k == newer:
		r.Rescan = false
	default:
		r.State, r.Reason, r.Rescan = stateQuarantined, err.Error(), false
		s.notify(EventQuarantined, "recordings: a damaged volume was found and quarantined", "volume", r.File, "reason", err.Error())
	}
	return true
}

// moveAside moves a file that is not a camd volume out of the way, into
// the quarantine directory: it is not camd's to delete.
func (s *Store) moveAside(path string, why error) {
	dir := filepath.Join(s.opts.Dir, quarantineDir)
	mkdir(dir)
	to := filepath.Join(dir, fmt.Sprintf("%s.%s", filepath.Base(path), time.Now().UTC().Format("20060102T150405Z")))
	if err := os.Rename(path, to); err != nil {
		s.log.Error("recordings: cannot move a foreign file aside", "file", path, "err", err)
		return
	}
	if err := errors.Join(durable.SyncDir(dir), durable.SyncDir(s.opts.Dir)); err != nil {
		s.log.Warn("recordings: moving a foreign file aside may not survive a power cut", "file", path, "err", err)
	}
	s.notify(EventForeign, "recordings: a file that is not a camd volume was moved aside",
		"file", filepath.Base(path), "moved_to", to, "reason", why.Error())
}

// openActive checks and opens the volume that was being written, and
// rebuilds its spans from it. A damaged one is quarantined, and a missing
// one or one of a newer camd closed: recording goes on in a new volume.
// On an error of the card (the volume cannot be read) the record stays
// active and the volume is left alone: the caller pauses recording and
// tries again later.
func (s *Store) openActive(r *vol) error {
	path := filepath.Join(s.opts.Dir, r.File)
	v, spans, err := scan(path, volume.Options{MaxSize: max(s.volumeSize, r.Bytes), NoSync: s.opts.NoSync}, true)
	switch k := classify(err); {
	case err == nil:
	case k == foreign:
		s.moveAside(path, err)
		r.State, r.Reason = stateQuarantined, err.Error()
		return err
	case k == damaged:
		fi, _ := os.Stat(path)
		if fi != nil {
			r.Bytes = fi.Size()
		}
		r.State, r.Reason = stateQuarantined, err.Error()
		s.notify(EventQuarantined, "recordings: the volume being written was damaged; quarantined, recording continues in a new one",
			"volume", r.File, "reason", err.Error())
		return err
	case k == newer:
		s.log.Warn("recordings: the volume being written is a newer camd's; recording continues in a new one", "volume", r.File)
		r.State = stateClosed
		return err
	case errors.Is(err, fs.ErrNotExist):
		// Gone (another card, or a formatted one, in the directory):
		// recording goes on in a new volume, and the next start drops
		// the record.
		r.State = stateClosed
		return err
	case k == unexpected:
		return fmt.Errorf("%w: %w", ErrUnexpected, err) // left alone, as for the card
	default:
		return err // the card, not the volume: try again later
	}
	r.Spans = spans
	r.Bytes = v.Size()
	s.setActive(r.Stream, v)
	return nil
}

// setActive makes v the volume being written for stream.
func (s *Store) setActive(stream uint32, v *volume.Volume) {
	fi, _ := os.Stat(v.Path())
	s.handleMu.Lock()
	s.writers[stream] = &writer{v: v, file: fi}
	s.handleMu.Unlock()
}

// mergeGap is the largest hole between fragments that still counts as
// continuous recording.
const mergeGap = 250 * time.Millisecond

// scanSpans rebuilds a volume's spans from its fragments.
func scanSpans(v *volume.Volume) ([]Span, error) {
	var spans []Span
	last := map[uint32]int{}
	err := v.All(func(f volume.Fragment) bool {
		spans = addSpan(spans, last, f.Stream, time.Unix(0, f.Start), time.Unix(0, f.End()))
		return true
	})
	return spans, err
}

// addSpan extends the stream's last span or starts a new one. last maps
// streams to their last span's index (nil: search).
func addSpan(spans []Span, last map[uint32]int, stream uint32, start, end time.Time) []Span {
	i, ok := -1, false
	if last != nil {
		i, ok = last[stream]
	} else {
		for j := len(spans) - 1; j >= 0; j-- {
			if spans[j].Stream == stream {
				i, ok = j, true
				break
			}
		}
	}
	if ok && !start.Before(spans[i].Start) && start.Sub(spans[i].End) <= mergeGap {
		if end.After(spans[i].End) {
			spans[i].End = end
		}
		return spans
	}
	spans = append(spans, Span{Stream: stream, Start: start, End: end})
	if last != nil {
		last[stream] = len(spans) - 1
	}
	return spans
}

// errCatalog marks the catalog's errors: the card's, when the catalog is
// on its file system (a card of recordings under the data directory).
var errCatalog = errors.New("recordings: catalog")

// saveRecords writes changed records and deletes dropped ones, and those
// of volumes deleted that an earlier update failed to drop (dropLater),
// in one catalog transaction.
func (s *Store) saveRecords(changed []*vol, drop []uint64) error {
	s.mu.Lock()
	later := slices.Clone(s.dropLater)
	s.mu.Unlock()
	drop = append(slices.Clone(drop), later...)
	if len(changed) == 0 && len(drop) == 0 {
		return nil
	}
	err := s.cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketRecordings)
		if err := putRecords(b, changed); err != nil {
			return err
		}
		for _, id := range drop {
			if err := b.Delete(volKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errCatalog, err)
	}
	if len(later) > 0 {
		s.mu.Lock()
		s.dropLater = slices.DeleteFunc(s.dropLater, func(id uint64) bool { return slices.Contains(later, id) })
		s.mu.Unlock()
	}
	return nil
}

// putRecords writes records in the catalog's recordings bucket.
func putRecords(b *bbolt.Bucket, recs []*vol) error {
	for _, r := range recs {
		buf, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put(volKey(r.ID), buf); err != nil {
			return err
		}
	}
	return nil
}

// copyVol copies a record under s.mu for writing outside it.
func copyVol(r *vol) *vol {
	c := *r
	c.Spans = slices.Clone(r.Spans)
	return &c
}

// pause records a write failure; the caller holds no lock.
func (s *Store) pause(err error) {
	s.mu.Lock()
	was := s.paused
	s.paused = err
	s.lastErr = err.Error()
	s.retryAt = time.Now().Add(s.opts.RetryPause)
	s.mu.Unlock()
	if classify(err) == unexpected {
		s.log.Error("recordings: unexpected error: please report", "err", err)
	}
	if was == nil {
		s.notify(EventPaused, "recordings: recording paused: "+reason(err), s.pauseData(err)...)
	}
}

var errQuotaTooSmall = errors.New("recordings: quota smaller than the least volume")

// Append stores a fragment in the newest volume, starting a new volume
// when it is full or the clock went back, and deletes the oldest volumes
// first if the quota would be passed. While recording is paused it drops
// the fragment and returns ErrPaused until it is time to try again.
func (s *Store) Append(f Fragment) error {
	_, err := s.AppendBatch([]Fragment{f})
	return err
}

// AppendBatch stores frags in order as Append does, in as few commits as
// it can: all of a stream's fragments that fit in its volume in one
// transaction (two flushes of the card for the batch, not two a
// fragment), and the rest, when the volume fills in the middle, in one
// more in the next volume. It returns how many it stored: the first n,
// durable when it returns. When err is not nil, frags[n] was not stored
// and err says why: ErrFragment when the store cannot hold that one
// fragment (out of range, too large), and recording goes on (the caller
// may pass the ones after it again); any other error drops frags[n:]
// (recording paused, as Append's errors do).
func (s *Store) AppendBatch(frags []Fragment) (n int, err error) {
	if len(frags) == 0 {
		return 0, nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if s.cardErr != nil || (s.paused != nil && time.Now().Before(s.retryAt)) {
		// Until the retry; or, for the card's absence, until it is back.
		s.stats.Dropped += uint64(len(frags))
		err := s.paused
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrPaused, reason(err))
	}
	wasPaused := s.paused != nil
	s.mu.Unlock()

	n, err = s.appendBatch(frags)
	if n > 0 && wasPaused {
		s.mu.Lock()
		s.paused = nil
		s.mu.Unlock()
		s.notify(EventResumed, "recordings: recording resumed")
	}
	if err == nil {
		return n, nil
	}
	s.mu.Lock()
	if classify(err) == refused {
		s.stats.Dropped++
	} else {
		s.stats.Dropped += uint64(len(frags) - n)
	}
	s.mu.Unlock()
	if classify(err) == refused {
		return n, err // the fragment, not the card: recording goes on
	}
	if classify(err) == unexpected {
		err = fmt.Errorf("%w: %w", ErrUnexpected, err)
	}
	s.pause(err)
	return n, fmt.Errorf("%w: %s: %w", ErrPaused, reason(err), err)
}

// appendBatch does AppendBatch's work, a run of one stream's fragments
// at a time; it holds writeMu.
func (s *Store) appendBatch(frags []Fragment) (int, error) {
	done := 0
	for done < len(frags) {
		n, err := s.appendRun(frags[done:])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// checkFragment refuses a fragment the store cannot hold.
func checkFragment(f Fragment) error {
	if f.Start.Before(minTime) || f.Start.After(maxTime) || f.Duration < 0 || f.Duration > volume.MaxDuration || len(f.Data) > volume.MaxFragment {
		return fmt.Errorf("%w: %d bytes at %v for %v is out of range", ErrFragment, len(f.Data), f.Start, f.Duration)
	}
	return nil
}

// appendRun stores the run of fragments at the start of frags that are
// of one stream, each starting after the one before, in one commit in
// the stream's volume (and one in the next when it fills). It returns
// how many it stored, all of the run when err is nil.
func (s *Store) appendRun(frags []Fragment) (int, error) {
	f := frags[0]
	if err := checkFragment(f); err != nil {
		return 0, err
	}
	run := 1
	for run < len(frags) && frags[run].Stream == f.Stream && frags[run].Start.After(frags[run-1].Start) && checkFragment(frags[run]) == nil {
		run++
	}
	frags = frags[:run]
	if s.writers[f.Stream] == nil {
		if err := s.reopen(f.Stream); err != nil {
			return 0, err
		}
	}
	// Keys of a stream grow: a clock set back starts a new volume.
	if last, ok := s.writers[f.Stream].v.Last(f.Stream); ok && f.Start.UnixNano() <= last.Start {
		s.log.Warn("recordings: time went back; starting a new volume", "last", time.Unix(0, last.Start), "now", f.Start)
		if err := s.rotate(f.Stream); err != nil {
			return 0, err
		}
	}
	stored := 0
	for attempt := 0; ; attempt++ {
		w := s.writers[f.Stream]
		_, size := w.items(frags[stored:])
		// The quota counts files: what the file grows by, nothing
		// while it has room (a file reused in place always has).
		grow, err := w.v.Growth(size)
		if err != nil {
			s.dropActive(f.Stream)
			return stored, err
		}
		if err := s.makeRoom(grow, f.Stream); err != nil {
			return stored, err
		}
		if w = s.writers[f.Stream]; w == nil {
			// makeRoom started the stream afresh and could not.
			return stored, fmt.Errorf("%w: no volume to write", ErrUnexpected)
		}
		items, _ := w.items(frags[stored:])
		n, err := w.v.AppendBatch(items)
		if n > 0 {
			s.stored(w, frags[stored:stored+n], items[:n])
			stored += n
		}
		switch {
		case err == nil:
			s.startNextEarly(f.Stream, len(frags[stored-1].Data))
			return stored, nil
		case errors.Is(err, volume.ErrFull) && (attempt == 0 || n > 0):
			// The volume is full, maybe in the middle of the batch (the
			// fragments before are stored): the rest go in the next,
			// where not fitting is an error.
			if err := s.rotate(f.Stream); err != nil {
				return stored, err
			}
			attempt = 0
		case s.roomHelps(err) && s.freeSpace(f.Stream):
			// The card filled (with other files, or our accounting lags
			// behind the file system's): camd's oldest recordings go,
			// whoever filled it, and the fragments are written again.
		case classify(err) == refused:
			return stored, err
		default:
			s.dropActive(f.Stream)
			return stored, err
		}
	}
}

// items makes volume items of frags for w, each with its init segment
// only where it changes, and counts their bytes.
func (w *writer) items(frags []Fragment) (items []volume.Item, size int) {
	items = make([]volume.Item, len(frags))
	in := w.init
	for i, f := range frags {
		it := volume.Item{Fragment: volume.Fragment{Key: volume.Key{Stream: f.Stream, Start: f.Start.UnixNano()}, Duration: f.Duration}, Data: f.Data}
		if f.Key {
			it.Flags |= volume.Keyframe
		}
		if f.Audio {
			it.Flags |= volume.Audio
		}
		if !bytes.Equal(in, f.Init) {
			it.Init, in = f.Init, f.Init
		}
		items[i] = it
		size += len(it.Data) + len(it.Init)
	}
	return items, size
}

// stored puts fragments w's volume just stored (as items) in the index.
func (s *Store) stored(w *writer, frags []Fragment, items []volume.Item) {
	w.init = frags[len(frags)-1].Init
	size := w.v.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.record(w.v.ID())
	for i, f := range frags {
		if a != nil {
			a.Spans = addSpan(a.Spans, nil, f.Stream, f.Start, f.Start.Add(f.Duration))
		}
		s.stats.Fragments++
		s.stats.Written += int64(len(items[i].Data) + len(items[i].Init))
	}
	if a != nil {
		a.Bytes = size
	}
}

// startNextEarly makes the stream's next volume beforehand, in the
// background, once its volume has room for at most prepareAhead more
// fragments of n bytes (the size of the one just stored) (prepareNext),
// and switches to it once there is no room for one more: a volume may
// so close up to a fragment short of full. The card's time for the next
// volume (the catalog's commits, the file made or reused and its
// fsyncs) is so spent beside the appends, not while a fragment waits to
// be written, where a power cut would lose it. When the next volume is
// not made yet, the appends go on in this one while it has room, and
// the first that does not fit waits for it (rotate); when making it
// failed, it is made here, as before (rotate), and a failure then is
// left to the next Append, which makes the volume again (reopen) and
// reports what fails; the fragment just stored is stored.
func (s *Store) startNextEarly(stream uint32, n int) {
	w := s.writers[stream]
	if w == nil {
		return
	}
	// Most appends find room for prepareAhead more: one look (a read
	// transaction) for them.
	p := s.next[stream]
	if p == nil {
		if soon, err := w.v.Fits(prepareAhead * n); err != nil || soon {
			return
		}
	}
	fits, err := w.v.Fits(n)
	if err != nil {
		return
	}
	if fits {
		if p == nil {
			s.prepareNext(stream)
		}
		return
	}
	if p != nil && !p.finished() {
		return
	}
	if err := s.rotate(stream); err != nil {
		s.log.Debug("recordings: could not start the next volume early", "err", err)
	}
}

// record returns the index's record of volume id, or nil; the caller
// holds s.mu.
func (s *Store) record(id uint64) *vol {
	for _, r := range s.vols {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// activeOf returns the record of the volume being written for stream,
// or nil; the caller holds s.mu.
func (s *Store) activeOf(stream uint32) *vol {
	for i := len(s.vols) - 1; i >= 0; i-- {
		if r := s.vols[i]; r.Stream == stream && r.State == stateActive {
			return r
		}
	}
	return nil
}

// newest returns the newest record of stream, or nil; the caller holds
// s.mu.
func (s *Store) newest(stream uint32) *vol {
	for i := len(s.vols) - 1; i >= 0; i-- {
		if s.vols[i].Stream == stream {
			return s.vols[i]
		}
	}
	return nil
}

// reopen opens the stream's volume being written again after a failure,
// or creates its first one.
func (s *Store) reopen(stream uint32) error {
	s.settle()
	if !s.recovered {
		// The card was out, or could not be read, since the store
		// opened: it may be another card, or have been checked.
		if err := s.prepare(false); err != nil || s.writers[stream] != nil {
			return err
		}
	}
	s.sizeQuota()
	s.mu.Lock()
	if s.quota < 2*MinVolumeSize {
		q := s.quota
		s.mu.Unlock()
		return fmt.Errorf("%w: quota %d bytes, a volume needs %d", errQuotaTooSmall, q, MinVolumeSize)
	}
	var last, creating *vol
	if r := s.newest(stream); r != nil && r.State == stateCreating {
		creating = r
	} else if a := s.activeOf(stream); a != nil {
		// The volume made beforehand, if any, stays the next.
		last = copyVol(a)
	}
	s.mu.Unlock()
	if _, err := os.Stat(s.opts.Dir); err != nil {
		return fmt.Errorf("recordings: %w", err) // never recreate a card's mount point
	}
	if creating != nil {
		return s.completeWithRoom(creating, leftFile)
	}
	if last != nil {
		err := s.openActive(last)
		if err == nil {
			s.replace(last)
			return nil
		}
		if last.State == stateActive {
			// The card cannot read the volume: recording stays paused,
			// and the volume with its recordings is left as it is (a new
			// volume would close it with the spans of its last save).
			return err
		}
		s.replace(last)
		if err := s.saveRecords([]*vol{last}, nil); err != nil {
			return err
		}
	}
	return s.startNext(stream)
}

// replace puts an updated copy of a record in the index.
func (s *Store) replace(r *vol) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.vols {
		if v.ID == r.ID {
			s.vols[i] = r
		}
	}
}

// rotate closes the stream's volume being written and starts the next
// one (startNext), then finishes the deletions of streams left pending
// (DeleteStream).
func (s *Store) rotate(stream uint32) error {
	s.closeActive(stream)
	if err := s.startNext(stream); err != nil {
		return err
	}
	s.finishPending()
	return nil
}

// startNext starts the stream's next volume: the one made beforehand
// (prepareNext), once it is made, or else one made now.
func (s *Store) startNext(stream uint32) error {
	if p := s.takePrepared(stream); p != nil {
		s.switchTo(stream, p)
		return nil
	}
	s.settle()
	s.mu.Lock()
	r := s.newest(stream)
	if r != nil && r.State != stateCreating && r.State != stateReady {
		r = nil
	}
	s.mu.Unlock()
	if r != nil {
		// What a job that failed left (prepareNext).
		return s.completeWithRoom(r, leftFile)
	}
	return s.create(stream)
}

// finishPending finishes the deletions of streams left pending, if any;
// what still fails stays pending.
func (s *Store) finishPending() {
	s.mu.Lock()
	pending := s.pendingDrops
	s.mu.Unlock()
	if pending {
		s.finishDeletions()
	}
}

// closeActive closes the handle of the stream's volume being written;
// its record stays active until create closes it in the catalog.
func (s *Store) closeActive(stream uint32) {
	s.handleMu.Lock()
	w := s.writers[stream]
	delete(s.writers, stream)
	s.handleMu.Unlock()
	if w != nil {
		w.v.Close()
		s.mu.Lock()
		if r := s.record(w.v.ID()); r != nil {
			r.Bytes = w.v.Size()
		}
		s.mu.Unlock()
	}
}

// closeAll closes the handles of every volume being written.
func (s *Store) closeAll() {
	s.handleMu.RLock()
	var streams []uint32
	for st := range s.writers {
		streams = append(streams, st)
	}
	s.handleMu.RUnlock()
	for _, st := range streams {
		s.closeActive(st)
	}
}

// dropActive closes the stream's handle after a write error: the next
// attempt reopens (and checks) it.
func (s *Store) dropActive(stream uint32) { s.closeActive(stream) }

// makeRoom deletes volumes (victim) until need more bytes fit in the
// quota. When no volume is left but those being written, the stream's
// own is closed so that it can go (a quota smaller than the volumes
// being written), if it holds recordings.
func (s *Store) makeRoom(need int64, stream uint32) error {
	for {
		s.mu.Lock()
		used := int64(0)
		for _, v := range s.vols {
			used += v.Bytes
		}
		over := used+need > s.quota
		deletable := s.victim() != nil
		r := s.activeOf(stream)
		hasSpans := r != nil && len(r.Spans) > 0
		s.mu.Unlock()
		if !over {
			return nil
		}
		if deletable {
			s.deleteOldest()
			continue
		}
		if hasSpans && s.writers[stream] != nil {
			// The stream's volume holds what is left of the quota: start
			// afresh.
			if err := s.rotate(stream); err != nil {
				return err
			}
			continue
		}
		return nil
	}
}

// deleteOldest removes the volume loop overwrite takes next (victim;
// removeVolume). It is taken out of the index in one step with its
// choice: the next volume, made in the background (prepareNext), cannot
// take its file meanwhile.
func (s *Store) deleteOldest() bool {
	s.mu.Lock()
	r := s.victim()
	if r != nil {
		s.unlist(r)
	}
	s.mu.Unlock()
	if r == nil {
		return false
	}
	s.erase(r)
	s.log.Debug("recordings: deleted the oldest volume", "file", r.File, "bytes", r.Bytes, "first", r.first())
	return true
}

// removeVolume deletes a volume other than the active one: its record
// first, then the file (a crash in between leaves an orphan that the
// next start adopts, so nothing is lost unaccounted).
func (s *Store) removeVolume(r *vol) {
	s.mu.Lock()
	s.unlist(r)
	s.mu.Unlock()
	s.erase(r)
}

// unlist takes a volume being deleted out of the index; the caller holds
// s.mu.
func (s *Store) unlist(r *vol) {
	s.vols = slices.DeleteFunc(s.vols, func(v *vol) bool { return v.ID == r.ID })
	s.stats.Deleted++
}

// erase deletes the record, then the file, of a volume taken out of the
// index (unlist).
func (s *Store) erase(r *vol) {
	if err := s.saveRecords(nil, []uint64{r.ID}); err != nil {
		// The catalog may be full with the card (on its file system):
		// the file goes anyway and gives the room back, and the record
		// is dropped by the next catalog update, never left to list a
		// volume deleted.
		s.mu.Lock()
		s.dropLater = append(s.dropLater, r.ID)
		s.mu.Unlock()
		s.log.Warn("recordings: catalog update for a deleted volume failed; trying again with the next", "file", r.File, "err", err)
	}
	if err := volume.Remove(filepath.Join(s.opts.Dir, r.File)); err != nil {
		s.log.Warn("recordings: cannot delete a volume", "file", r.File, "err", err)
	}
	s.mu.Lock()
	pending := len(s.dropLater) > 0
	s.mu.Unlock()
	if pending {
		s.saveRecords(nil, nil)
	}
}

// freeSpace gives the card room after it said it is full: it deletes
// the oldest volume, or, when only the volume being written is left and
// it holds recordings, makes the next volume in its place (its
// recordings go: create deletes it if the card has no room for both).
// It reports false when nothing of the store's is left to delete.
func (s *Store) freeSpace(stream uint32) bool {
	if s.deleteOldest() {
		return true
	}
	s.mu.Lock()
	r := s.activeOf(stream)
	alone := r != nil && len(r.Spans) > 0
	s.mu.Unlock()
	return alone && s.writers[stream] != nil && s.rotate(stream) == nil
}

// roomHelps reports whether deleting volumes may let an operation that
// failed with err succeed: the card is full, or the catalog is and it is
// on the card's file system.
func (s *Store) roomHelps(err error) bool {
	if classify(err) != cardFull {
		return false
	}
	return !errors.Is(err, errCatalog) || sameFS(s.cat.Path(), s.opts.Dir)
}

// sameFS reports whether a and b are on one file system.
func sameFS(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// Delete removes every volume whose recordings all end before before
// (all of them, the one being written included, for a zero time).
func (s *Store) Delete(before time.Time) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	all := before.IsZero()
	s.settle()
	if all {
		s.dropPrepared()
		s.closeAll()
	}
	s.mu.Lock()
	var gone []*vol
	var keep []*vol
	for _, r := range s.vols {
		end := time.Time{}
		for _, sp := range r.Spans {
			if sp.End.After(end) {
				end = sp.End
			}
		}
		if all || (!r.inUse() && !end.After(before)) {
			gone = append(gone, r)
		} else {
			keep = append(keep, r)
		}
	}
	s.vols = keep
	s.mu.Unlock()
	ids := make([]uint64, len(gone))
	for i, r := range gone {
		ids[i] = r.ID
	}
	if err := s.saveRecords(nil, ids); err != nil {
		return 0, err
	}
	paths := make([]string, len(gone))
	for i, r := range gone {
		paths[i] = filepath.Join(s.opts.Dir, r.File)
	}
	if err := volume.Remove(paths...); err != nil {
		s.log.Warn("recordings: cannot delete a volume", "err", err)
	}
	return len(gone), nil
}

// Stats returns the store's state.
func (s *Store) Stats() Stats {
	total, free, used, _ := fsSpace(s.opts.Dir)
	held := s.allocated()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Quota, st.VolumeSize, st.FreeBytes, st.TotalBytes = s.quota, s.volumeSize, free, total
	if s.paused != nil {
		st.Paused = reason(s.paused)
	}

	for _, r := range s.vols {
		st.Bytes += r.Bytes
		switch r.State {
		case stateQuarantined:
			st.Quarantined++
			continue
		case stateCreating, stateReady:
			continue
		}
		st.Volumes++
		for _, sp := range r.Spans {
			if st.Oldest.IsZero() || sp.Start.Before(st.Oldest) {
				st.Oldest = sp.Start
			}
			if sp.End.After(st.Newest) {
				st.Newest = sp.End
			}
		}
	}
	st.OthersBytes = max(0, used-held)
	if s.opts.Card != nil {
		st.Card = s.cardStatus(held)
	}
	return st
}

// allocated adds up what the store's files take on the file system:
// their blocks, which may be fewer than their sizes say (a file grown
// by ftruncate on ext4 or tmpfs has holes until it is written).
func (s *Store) allocated() int64 {
	s.mu.Lock()
	files := make([]string, len(s.vols))
	for i, r := range s.vols {
		files[i] = r.File
	}
	s.mu.Unlock()
	var n int64
	for _, f := range files {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(s.opts.Dir, f), &st) == nil {
			n += int64(st.Blocks) * 512
		}
	}
	return n
}

// Paused reports why recording is paused, or nil.
func (s *Store) Paused() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the clips still open (an export being downloaded: its
// next read fails with ErrClosed), saves the active volume's spans and
// closes it: when Close returns, the store holds none of its files open,
// and they can be erased (a factory reset). It is safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		s.watching.Wait()
	}
	s.closeClips()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.closeWriter()
}

// closeWriter closes the volumes being written and saves their spans in
// the catalog; the caller holds writeMu. A volume made beforehand
// (prepareNext) becomes the one being written, the one before it
// closed: the next start goes on in it.
func (s *Store) closeWriter() error {
	var changed []*vol
	for st, p := range s.dropPrepared() {
		changed = append(changed, s.handOver(st, p.r.ID)...)
	}
	s.closeAll()
	s.mu.Lock()
	for _, r := range s.vols {
		if r.State == stateActive {
			changed = append(changed, copyVol(r))
		}
	}
	s.mu.Unlock()
	return s.saveRecords(changed, nil)
}
