package e2e

// The power-cut harness: a Linux guest under QEMU (TCG: no KVM here)
// records to a card image whose writes and flushes QEMU's blklogwrites
// driver logs; the host kills QEMU at a random moment and replays the
// log onto the card as it was at boot, up to the last flush the guest
// completed: what a card that keeps only flushed writes holds after a
// power cut. The next boot starts from that image, and the guest
// (e2e/cardguest) reports what camd recovered. docs/storage.md,
// "Power-cut tests", says what is checked and what it costs.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/logwrites"
	"github.com/camd-project/camd/internal/testenv"
)

// cardFS is a file system a card is formatted with.
type cardFS struct {
	name      string // as the kernel calls it (mount -t)
	mkfs      []string
	fsck      []string // checks without changing anything
	repair    []string // repairs what it can, as the owner would
	module    []string // kernel modules it needs
	partition byte     // its type in an MBR partition table
}

// An ext4 card is formatted with its inode tables and journal zeroed at
// once, as a card in use for a while has them: left lazy, the kernel
// zeroes them in the background after the first mounts, writes and
// flushes that the wear figures would count as camd's.
var cardFileSystems = map[string]cardFS{
	"ext4": {"ext4", []string{"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"}, []string{"e2fsck", "-fn"}, []string{"e2fsck", "-fy"},
		nil, 0x83},
	"fat32": {"vfat", []string{"mkfs.vfat", "-F", "32", "-s", "8"}, []string{"fsck.vfat", "-n"}, []string{"fsck.vfat", "-a"},
		[]string{"vfat", "nls_cp437", "nls_utf8", "nls_ascii"}, 0x0c},
	"exfat": {"exfat", []string{"mkfs.exfat"}, []string{"fsck.exfat", "-n"}, []string{"fsck.exfat", "-y"},
		[]string{"exfat", "nls_utf8"}, 0x07},
}

const (
	cardSize  = 512 << 20 // 4 KiB clusters on FAT32, as on a real card
	flashSize = 64 << 20
)

// The guest's kernel and initramfs are made once per test binary.
var (
	guestOnce             sync.Once
	guestKernel, guestRD  string
	guestErr              error
	guestTools            = []string{"qemu-system-x86_64", "mkfs.ext4", "mkfs.vfat", "mkfs.exfat", "e2fsck", "fsck.vfat", "fsck.exfat", "ffmpeg"}
	guestModulesForDisks  = []string{"virtio_pci", "virtio_blk"}
	guestConfigFormat     = "listen: 127.0.0.1:8443\ndata: /data/camd\nlog_level: debug\nsource: passthrough\npassthrough: {file: /media.h264, loop: true}\nrecording: {path: /card/camd, volume_size: %s, quota: %s}\n"
	guestVolume, guestQuo = "2MiB", "8MiB"
)

// powerCutGuest returns the guest's kernel and initramfs: Debian's kernel
// (linux-image-cloud-amd64 or linux-image-amd64), and an initramfs of
// cardguest as init, camd (linux/amd64 without cgo), a 2 Mbps H.264 file
// and the kernel modules of the disks and of every card file system.
func powerCutGuest(t testing.TB) (kernel, initrd string) {
	t.Helper()
	need(t, guestTools...)
	kernels, _ := filepath.Glob("/boot/vmlinuz-*-amd64")
	sort.Slice(kernels, func(i, j int) bool { // the cloud kernel first: smaller
		return strings.Contains(kernels[i], "cloud") && !strings.Contains(kernels[j], "cloud")
	})
	testenv.Need(t, len(kernels) > 0, "no Debian kernel in /boot (scripts/install-deps.sh installs linux-image-cloud-amd64)")
	guestOnce.Do(func() {
		guestKernel = kernels[0]
		guestRD, guestErr = buildInitramfs(t, guestKernel)
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	if guestRD == "" {
		t.Fatal("building the guest failed in an earlier test")
	}
	return guestKernel, guestRD
}

func buildInitramfs(t testing.TB, kernel string) (string, error) {
	dir := filepath.Join(bin, "powercut")
	os.MkdirAll(dir, 0o755)
	for _, c := range []struct{ out, pkg string }{{"init", "./cardguest"}, {"camd", "../cmd/camd"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, c.out), c.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s without cgo: %v\n%s", c.pkg, err, out)
		}
	}
	// A keyframe every 0.9 s: fragments as long as camd makes them of
	// its own encoders (docs/storage.md, "Fragments").
	media := fixture(t, dir, "1280x720", 30, 4, 27, "2M", "baseline")

	release := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	wanted := slices.Clone(guestModulesForDisks)
	for _, fs := range cardFileSystems {
		wanted = append(wanted, fs.module...)
	}
	mods, err := moduleClosure("/lib/modules/"+release, wanted)
	if err != nil {
		return "", err
	}
	var cpio cpioWriter
	for _, d := range []string{"dev", "proc", "sys", "tmp", "data", "card", "modules"} {
		cpio.dir(d)
	}
	cpio.node("dev/console", 5, 1)
	for name, src := range map[string]string{"init": filepath.Join(dir, "init"), "camd": filepath.Join(dir, "camd"), "media.h264": media} {
		if err := cpio.file(name, src, 0o755); err != nil {
			return "", err
		}
	}
	cpio.data("camd.yaml", []byte(fmt.Sprintf(guestConfigFormat, guestVolume, guestQuo)), 0o644)
	var order []string
	for _, m := range mods {
		base := filepath.Base(m)
		order = append(order, base)
		if err := cpio.file("modules/"+base, m, 0o644); err != nil {
			return "", err
		}
	}
	cpio.data("modules/order", []byte(strings.Join(order, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "initramfs.cpio")
	return out, os.WriteFile(out, cpio.close(), 0o644)
}

// moduleClosure lists the module files (paths) that load names, each
// after the modules it depends on, from the kernel's modules.dep. A name
// the kernel has built in (or lacks) is left out.
func moduleClosure(dir string, names []string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("the kernel's modules (linux-image-*-amd64 installs them): %w", err)
	}
	deps := map[string][]string{} // module name → its file, then the files it needs
	for _, l := range strings.Split(string(b), "\n") {
		file, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		deps[moduleName(file)] = append([]string{file}, strings.Fields(rest)...)
	}
	var list []string
	seen := map[string]bool{}
	var add func(file string, need []string)
	add = func(file string, need []string) {
		if seen[file] {
			return
		}
		seen[file] = true
		// modules.dep lists every module needed, nearest last: load from
		// the end.
		for i := len(need) - 1; i >= 0; i-- {
			if d, ok := deps[moduleName(need[i])]; ok {
				add(d[0], d[1:])
			}
		}
		list = append(list, filepath.Join(dir, file))
	}
	for _, n := range names {
		if d, ok := deps[n]; ok {
			add(d[0], d[1:])
		}
	}
	return list, nil
}

// moduleName is the name of the module in file (kernel/fs/fat/vfat.ko.xz:
// vfat).
func moduleName(file string) string {
	name, _, _ := strings.Cut(filepath.Base(file), ".ko")
	return strings.ReplaceAll(name, "-", "_")
}

// cpioWriter writes a cpio archive in the "newc" format, as the kernel
// unpacks an initramfs.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) header(name string, mode, size, major, minor int) {
	w.ino++
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, 1, 0, size, 0, 0, major, minor, len(name)+1, 0)
	w.buf.WriteString(name + "\x00")
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string) { w.header(name, 0o040755, 0, 0, 0) }

func (w *cpioWriter) node(name string, major, minor int) {
	w.header(name, 0o020600, 0, major, minor)
}

func (w *cpioWriter) data(name string, b []byte, perm int) {
	w.header(name, 0o100000|perm, len(b), 0, 0)
	w.buf.Write(b)
	w.pad()
}

func (w *cpioWriter) file(name, src string, perm int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	w.data(name, b, perm)
	return nil
}

func (w *cpioWriter) close() []byte {
	w.header("TRAILER!!!", 0, 0, 0, 0)
	return w.buf.Bytes()
}

// guestQEMU is the command that boots kernel and initrd with cmdline
// under TCG, one CPU and memMB of memory, its serial console on standard
// input and output, and the devices of args; a guest that reboots ends
// QEMU. The power-cut and the Wi-Fi guests boot this way.
func guestQEMU(kernel, initrd, cmdline string, memMB int, args ...string) *exec.Cmd {
	// no_timer_check: on a loaded host the guest's check of its timer
	// interrupt can time out under TCG, and the kernel panics at boot
	// ("IO-APIC + timer doesn't work!").
	return exec.Command("qemu-system-x86_64", append([]string{"-machine", "pc,accel=tcg", "-cpu", "max",
		"-m", strconv.Itoa(memMB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet no_timer_check " + cmdline}, args...)...)
}

// spanNS is a stretch of recording in Unix ns.
type spanNS struct{ start, end int64 }

// powerCut is one card (and the device's flash) through a series of
// boots, each ended by a power cut or, for the last, a clean stop.
type powerCut struct {
	t            testing.TB
	fs           cardFS
	dir          string
	kernel, rd   string
	flash, card  string // the disks as the next boot finds them
	token        string
	required     []spanNS        // what camd last reported as recorded
	quarantined  int             // volumes camd had quarantined so far
	seen         map[string]bool // files moved aside so far
	boots        int
	evictedSince bool // camd deleted a volume after its last report
	dataOnCard   bool // camd's data directory is on the card (newPowerCut)
}

// newPowerCut formats a card with fs and the flash with ext4. With
// dataOnCard the card also holds camd's data directory (the catalog), in
// an ext4 partition beside the recordings' (the flash stays unused): one
// write log then orders everything camd writes, as a sweep of crash
// states needs (camd's data directory cannot be on FAT or exFAT, which
// hold no unix socket).
func newPowerCut(t testing.TB, fs string, dataOnCard bool) *powerCut {
	t.Helper()
	kernel, rd := powerCutGuest(t)
	p := &powerCut{t: t, fs: cardFileSystems[fs], dir: t.TempDir(), kernel: kernel, rd: rd, seen: map[string]bool{},
		dataOnCard: dataOnCard}
	p.flash, p.card = filepath.Join(p.dir, "flash.img"), filepath.Join(p.dir, "card.img")
	p.mkfs(p.flash, flashSize, cardFileSystems["ext4"].mkfs)
	if !dataOnCard {
		p.mkfs(p.card, cardSize, p.fs.mkfs)
		return p
	}
	// An MBR with the recordings' partition at 1 MiB, then the data's.
	rec, data := p.card+".1", p.card+".2"
	p.mkfs(rec, cardSize, p.fs.mkfs)
	p.mkfs(data, flashSize, cardFileSystems["ext4"].mkfs)
	mbr := make([]byte, 512)
	for i, part := range []struct {
		kind        byte
		start, size int64
	}{{p.fs.partition, cardStart, cardSize}, {0x83, cardStart + cardSize, flashSize}} {
		e := mbr[446+16*i:]
		e[4] = part.kind
		binary.LittleEndian.PutUint32(e[8:], uint32(part.start/512))
		binary.LittleEndian.PutUint32(e[12:], uint32(part.size/512))
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	f, err := os.Create(p.card)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(mbr)
	f.Truncate(cardStart + cardSize + flashSize)
	for _, part := range []struct {
		path string
		at   int64
	}{{rec, cardStart}, {data, cardStart + cardSize}} {
		if err := copySparse(f, part.at, part.path, 0, -1); err != nil {
			t.Fatal(err)
		}
		os.Remove(part.path)
	}
	return p
}

// cardStart is where the recordings' partition of a card with a data
// partition starts.
const cardStart = 1 << 20

func (p *powerCut) mkfs(path string, size int64, mkfs []string) {
	t := p.t
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], path)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", mkfs[0], err, out)
	}
}

// copySparse copies size bytes (all, for -1) of src from offset from to
// dst at offset at, skipping blocks of zeros so that dst stays sparse.
func copySparse(dst *os.File, at int64, src string, from, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if size < 0 {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		size = info.Size() - from
	}
	buf := make([]byte, 1<<16)
	zero := make([]byte, len(buf))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], from+off); err != nil {
			return err
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			continue
		}
		if _, err := dst.WriteAt(buf[:n], at+off); err != nil {
			return err
		}
	}
	return nil
}

// boot is what one boot reported.
type boot struct {
	mount     string // the card's mount options
	recovered *guestRecovered
	checks    []string // closed volumes whose check failed
	final     *guestFinal
	errors    []string
	log       []string // camd's log
	// cutAt is when the power was cut, on the guest's clock (Unix ns);
	// lastAck the end of the recording camd reported last before it.
	cutAt, lastAck int64
	// ready is how long the boot took until camd's first fragment.
	ready, elapsed time.Duration
	// card is the card's write log: the replay's entries, and all of it.
	cardLog       *logwrites.Log
	replayed      int
	mediaBytes    int64 // recorded by camd in this boot
	window        *ioWindow
	guestConsole  []string // lines that were not the guest's reports
	newRecordings bool     // camd recorded in this boot
	// required is what camd last reported as recorded before the boot
	// ended; evicted, whether it deleted a volume after that report.
	required []spanNS
	evicted  bool
	// evictedAtStart: camd's retention took its oldest volume at this
	// boot's start, before it reported what it recovered.
	evictedAtStart bool
	cutAfter       time.Duration
	// reportLag is how long after a fragment's end camd's timeline
	// showed it, the median over the boot, and reportLagMax the longest:
	// the commit (longer when the volume grows), the guest's poll (every
	// 200 ms) and the console, on the emulated machine.
	reportLag, reportLagMax time.Duration
	// mark is how many entries the card's log held when camd logged the
	// line bootOptions.cutAtLog.
	mark int
	// base is the card image the boot started from.
	base string
}

type guestStatus struct {
	Quarantined int    `json:"quarantined"`
	Paused      string `json:"paused"`
	Volumes     int    `json:"volumes"`
	Written     int64  `json:"bytes_written"`
}

type guestRecovered struct {
	Spans    []span      `json:"spans"`
	Status   guestStatus `json:"status"`
	Events   []string    `json:"events"`
	Messages []string    `json:"messages"`
	Files    []string    `json:"files"`
	Damaged  []string    `json:"damaged"`
}

type guestFinal struct {
	Catalog string            `json:"catalog"`
	Volumes map[string]string `json:"volumes"`
}

// ioWindow is what reached the card during a stretch of steady
// recording.
type ioWindow struct {
	seconds            float64
	media, bytes       int64
	flushes, writes    int
	fromEntry, toEntry int
	// fatBytes: on FAT32, the bytes written to the allocation tables
	// (and the reserved sectors before them); zeros: sectors written
	// with nothing but zeros (a file system filling a file's growth,
	// the empty part of bbolt's pages).
	fatBytes, zeros int64
}

// sectorsOf sees the sectors a log entry writes (Log.Apply writes to it).
type sectorsOf struct {
	size int64
	each func(at int64, data []byte)
}

func (s sectorsOf) WriteAt(p []byte, off int64) (int, error) {
	for i := int64(0); i < int64(len(p)); i += s.size {
		s.each(off+i, p[i:min(i+s.size, int64(len(p)))])
	}
	return len(p), nil
}

// cardWrites counts, of the writes of entries from..to of a card's log
// (its file system at the start of image), those to the reserved
// sectors and allocation tables of a FAT32 card, and the sectors written
// with zeros.
func cardWrites(t testing.TB, fat32 bool, image string, l *logwrites.Log, from, to int) (fat, zeros int64) {
	t.Helper()
	dataStart := int64(0)
	if fat32 {
		f, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		bpb := make([]byte, 512)
		if _, err := f.ReadAt(bpb, 0); err != nil {
			t.Fatal(err)
		}
		sector := int64(binary.LittleEndian.Uint16(bpb[11:]))
		dataStart = (int64(binary.LittleEndian.Uint16(bpb[14:])) + int64(bpb[16])*int64(binary.LittleEndian.Uint32(bpb[36:]))) * sector
	}
	see := sectorsOf{size: l.SectorSize, each: func(at int64, data []byte) {
		if !slices.ContainsFunc(data, func(b byte) bool { return b != 0 }) {
			zeros += int64(len(data))
		}
		if at < dataStart {
			fat += int64(len(data))
		}
	}}
	for i := from; i < min(to, len(l.Entries)); i++ {
		if l.Entries[i].Flags&logwrites.Discard != 0 {
			continue
		}
		if err := l.Apply(see, i); err != nil {
			t.Fatal(err)
		}
	}
	return fat, zeros
}

// bootOptions say how a boot ends: a power cut cutAfter after camd's
// first fragment (or after the cutAtLogN-th line of camd's log that
// contains cutAtLog), or (final > 0) a clean stop after final of
// recording from camd's first fragment (or 20 s later without one). measure > 0 measures the card's writes over that long, from
// 5 s after camd's first fragment.
type bootOptions struct {
	cutAfter, final, measure time.Duration
	cutAtLog                 string
	cutAtLogN                int
}

// boot starts the guest on the current disks and ends it as o says; the
// disks then hold what the guest's flushes made durable.
func (p *powerCut) boot(o bootOptions) *boot {
	t := p.t
	t.Helper()
	p.boots++
	run := filepath.Join(p.dir, fmt.Sprintf("boot%d", p.boots))
	os.MkdirAll(run, 0o755)
	disks := map[string]string{"flash": p.flash, "card": p.card}
	b := &boot{base: p.card}
	var args []string
	for _, name := range []string{"flash", "card"} {
		live, log := filepath.Join(run, name+".img"), filepath.Join(run, name+".log")
		if out, err := exec.Command("cp", "--sparse=always", disks[name], live).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		os.WriteFile(log, nil, 0o644)
		args = append(args,
			"-blockdev", "driver=file,filename="+live+",node-name="+name+"-file",
			"-blockdev", "driver=file,filename="+log+",node-name="+name+"-log",
			"-blockdev", "driver=blklogwrites,file="+name+"-file,log="+name+"-log,node-name="+name,
			"-device", "virtio-blk-pci,drive="+name+",serial="+name)
	}
	cmdline := "camd.fs=" + p.fs.name
	if p.token != "" {
		cmdline += " camd.token=" + p.token
	}
	if p.dataOnCard {
		cmdline += " camd.data=card"
	}
	if o.final > 0 {
		cmdline += " camd.final=" + strconv.Itoa(int(o.final.Seconds()))
	}
	cmd := guestQEMU(p.kernel, p.rd, cmdline, 768, args...)
	// A pipe of our own: reading it to its end, after QEMU exited, gets
	// every line (exec's StdoutPipe is closed by Wait).
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	started := time.Now()
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		text string
		at   time.Time
	}
	lines := make(chan line, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- line{sc.Text(), time.Now()}
		}
		close(lines)
	}()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
		}
		<-exited
	})

	offset := int64(1) << 62 // host minus guest clock, the least seen
	var cut, limit <-chan time.Time
	limit = time.After(4*time.Minute + o.final + 20*time.Second)
	var measureStart, measureEnd <-chan time.Time
	var lastWritten int64
	var window ioWindow
	var windowStart time.Time
	var killedHost time.Time
	marks := 0
	var stuck <-chan time.Time
	var acks [][2]int64 // when (host clock) camd's reported end grew, and to what
	cardLogPath := filepath.Join(run, "card.log")
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			text, isReport := strings.CutPrefix(l.text, "@pc ")
			if !isReport {
				b.guestConsole = append(b.guestConsole, l.text)
				continue
			}
			kind, rest, _ := strings.Cut(text, " ")
			switch kind {
			case "tick":
				g, _ := strconv.ParseInt(rest, 10, 64)
				offset = min(offset, l.at.UnixNano()-g)
			case "mount":
				b.mount = strings.TrimPrefix(rest, "card ")
			case "token":
				p.token = rest
			case "recovered":
				b.recovered = &guestRecovered{}
				if err := json.Unmarshal([]byte(rest), b.recovered); err != nil {
					t.Fatalf("recovered: %v", err)
				}
				if o.cutAfter > 0 {
					// A card camd cannot record to (read-only, damaged)
					// gets its power cut all the same.
					stuck = time.After(45 * time.Second)
				}
			case "check":
				if !strings.HasSuffix(rest, " ok") {
					b.checks = append(b.checks, rest)
				}
			case "ack":
				var first, start, end, n, written int64
				fmt.Sscan(rest, &first, &start, &end, &n, &written)
				p.acknowledge(first, start, end)
				if end != b.lastAck {
					acks = append(acks, [2]int64{l.at.UnixNano(), end})
				}
				lastWritten, b.lastAck = written, end
				if !b.newRecordings && b.recovered != nil && written > 0 {
					b.newRecordings, stuck = true, nil
					b.ready = l.at.Sub(started)
					if o.cutAfter > 0 && o.cutAtLog == "" {
						cut = time.After(o.cutAfter)
					}
					if o.measure > 0 {
						measureStart = time.After(5 * time.Second)
					}
				}
			case "log":
				b.log = append(b.log, rest)
				// Retention: the oldest volume deleted, or its file
				// taken for the next volume (the ring). Before camd's
				// recovery report, it is this boot's doing, after
				// the cut: what it took is not the cut's loss.
				if strings.Contains(rest, "deleted the oldest volume") || strings.Contains(rest, "the oldest volume's file holds the next one") {
					p.evictedSince = true
					if b.recovered == nil {
						b.evictedAtStart = true
					}
				}
				if o.cutAtLog != "" && strings.Contains(rest, o.cutAtLog) {
					if marks++; marks == o.cutAtLogN {
						b.mark = logEntries(t, cardLogPath)
						cut = time.After(o.cutAfter)
					}
				}
			case "final":
				b.final = &guestFinal{}
				json.Unmarshal([]byte(rest), b.final)
			case "error":
				b.errors = append(b.errors, rest)
			}
		case <-measureStart:
			measureStart, measureEnd = nil, time.After(o.measure)
			window.fromEntry, window.media, windowStart = logEntries(t, cardLogPath), lastWritten, time.Now()
		case <-measureEnd:
			measureEnd = nil
			window.toEntry, window.media, window.seconds = logEntries(t, cardLogPath), lastWritten-window.media, time.Since(windowStart).Seconds()
			b.window = &window
		case <-stuck:
			stuck = nil
			cut = time.After(0)
		case <-cut:
			cut = nil
			killedHost = time.Now()
			cmd.Process.Kill()
			killed = true
			b.cutAt = killedHost.UnixNano() - offset
		case <-limit:
			cmd.Process.Kill()
			killed = true
			t.Fatalf("boot %d did not end within its time\nconsole:\n%s\nreports: %v", p.boots,
				strings.Join(b.guestConsole, "\n"), b.errors)
		}
	}
	<-exited
	b.elapsed = time.Since(started)
	var lags []time.Duration
	for _, a := range acks {
		lags = append(lags, time.Duration(a[0]-offset-a[1]))
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		b.reportLag, b.reportLagMax = lags[len(lags)/2], lags[len(lags)-1]
	}
	b.required, b.evicted = slices.Clone(p.required), p.evictedSince
	b.mediaBytes = lastWritten
	if o.cutAfter > 0 && !killed {
		t.Fatalf("boot %d ended before the power cut: %s\nconsole:\n%s\nreports: %v\ncamd:\n%s", p.boots, stderr.String(),
			strings.Join(b.guestConsole, "\n"), b.errors, strings.Join(b.log, "\n"))
	}

	// The power cut: each disk keeps what its last completed flush made
	// durable.
	for _, name := range []string{"flash", "card"} {
		log := openLog(t, filepath.Join(run, name+".log"))
		n := log.LastFlush(len(log.Entries))
		next := filepath.Join(run, name+".replayed")
		if out, err := exec.Command("cp", "--sparse=always", disks[name], next).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		f, err := os.OpenFile(next, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.Replay(f, n); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if name == "card" {
			p.card, b.cardLog, b.replayed = next, log, n
		} else {
			p.flash = next
		}
	}
	if b.window != nil {
		w := b.window
		w.bytes = b.cardLog.Bytes(w.toEntry) - b.cardLog.Bytes(w.fromEntry)
		w.flushes = b.cardLog.Flushes(w.toEntry) - b.cardLog.Flushes(w.fromEntry)
		w.writes = b.cardLog.Writes(w.toEntry) - b.cardLog.Writes(w.fromEntry)
		if !p.dataOnCard {
			w.fatBytes, w.zeros = cardWrites(t, p.fs.name == "vfat", p.card, b.cardLog, w.fromEntry, w.toEntry)
		}
	}
	// Earlier boots' disks are no longer needed.
	if prev := filepath.Join(p.dir, fmt.Sprintf("boot%d", p.boots-1)); p.boots > 1 {
		os.RemoveAll(prev)
	}
	for _, f := range []string{"flash.img", "card.img", "flash.log", "card.log"} {
		os.Remove(filepath.Join(run, f))
	}
	return b
}

func openLog(t testing.TB, path string) *logwrites.Log {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	info, _ := f.Stat()
	log, err := logwrites.Open(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// logEntries counts the entries QEMU has logged so far.
func logEntries(t testing.TB, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log, err := logwrites.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return 0
	}
	return len(log.Entries)
}

// acknowledge takes camd's latest report of its timeline: spans from
// first on, the last one from start to end. Older spans (retention
// deleted them) are no longer what camd reports as recorded.
func (p *powerCut) acknowledge(first, start, end int64) {
	p.evictedSince = false
	kept := p.required[:0]
	for _, s := range p.required {
		if s.end <= first || s.start >= start {
			continue
		}
		s.start = max(s.start, first)
		kept = append(kept, s)
	}
	p.required = append(kept, spanNS{start, end})
}

// cutReport is what a power cut cost, found at the next boot.
type cutReport struct {
	// lost is the recording lost before the cut: from the end of what
	// survived to the cut.
	lost time.Duration
	// missing is recording camd had reported that is not there any more.
	missing []spanNS
	// problems are what else went wrong: quarantine, events, failed
	// checks, a card mounted read-only or that recording never resumed.
	problems []string
	// unusable: the card was mounted read-only or camd could not record.
	unusable bool
	// lag and lagMax are how long after their end camd reported
	// fragments before the cut (boot.reportLag, reportLagMax).
	lag, lagMax time.Duration
	// unreported is the part of lost after the end camd last reported
	// before the cut: recording camd had not yet committed.
	unreported time.Duration
	fsck       string // what fsck said of the card the cut left, "" if clean
}

// check compares what the boot after a cut recovered with what camd had
// reported before it (prev), and runs fsck on the card the cut left.
func (p *powerCut) check(prev, next *boot, fsck string) cutReport {
	r := cutReport{fsck: fsck, lag: prev.reportLag, lagMax: prev.reportLagMax}
	if !strings.HasPrefix(next.mount, "rw") {
		r.unusable = true
		r.problems = append(r.problems, "the card was mounted "+next.mount)
	}
	if next.recovered == nil {
		r.unusable = true
		r.problems = append(r.problems, "camd did not start: "+strings.Join(next.errors, "; "))
		return r
	}
	if !next.newRecordings {
		r.unusable = true
		r.problems = append(r.problems, "camd did not record after the cut: "+next.recovered.Status.Paused)
	}
	rec := next.recovered
	var got []spanNS
	for _, s := range rec.Spans {
		got = append(got, spanNS{s.Start.UnixNano(), s.End.UnixNano()})
	}
	required := requiredBefore(prev, next.evictedAtStart, got)
	r.missing = uncovered(required, got)
	// The recording lost at the cut: from the end of what survived of
	// the boot's recording (or its start, if nothing did) to the cut.
	var end int64
	if n := len(prev.required); n > 0 {
		end = prev.required[n-1].start
	}
	for _, s := range got {
		if s.end <= prev.cutAt {
			end = max(end, s.end)
		}
	}
	r.lost = time.Duration(prev.cutAt - end)
	r.unreported = time.Duration(prev.cutAt - max(end, prev.lastAck))
	r.problems = append(r.problems, p.recoveryProblems(next)...)
	return r
}

// recoveryProblems lists what camd's recovery at boot next found wrong
// that no earlier boot had found.
func (p *powerCut) recoveryProblems(next *boot) []string {
	rec := next.recovered
	var problems []string
	// What camd's recovery logged (its events are written to the catalog
	// after it, and may not be there yet when the guest asks).
	for _, l := range next.log {
		if _, kind, ok := strings.Cut(l, " event=recording."); ok && !strings.HasPrefix(kind, "paused") && !strings.HasPrefix(kind, "resumed") {
			problems = append(problems, l)
		}
	}
	// Quarantine and moved-aside files stay: only new ones are this cut's.
	if rec.Status.Quarantined > p.quarantined {
		problems = append(problems, fmt.Sprintf("%d volumes quarantined", rec.Status.Quarantined-p.quarantined))
	}
	p.quarantined = rec.Status.Quarantined
	for _, f := range append(slices.Clone(rec.Damaged), rec.Files...) {
		if (strings.HasPrefix(f, "quarantine/") || strings.Contains(f, ".damaged-")) && !p.seen[f] {
			p.seen[f] = true
			problems = append(problems, "moved aside: "+f)
		}
	}
	for _, c := range next.checks {
		problems = append(problems, "check: "+c)
	}
	return problems
}

// requiredBefore is what camd reported as recorded before the cut that
// ended b. When camd deleted its oldest volume (or made the next one in
// its file) after its last report, or at the next start (evictedAtStart)
// before reporting what it recovered, the recording before what survived
// is retention's, not the cut's.
func requiredBefore(b *boot, evictedAtStart bool, got []spanNS) []spanNS {
	req := b.required
	if (b.evicted || evictedAtStart) && len(got) > 0 {
		var kept []spanNS
		for _, s := range req {
			if s.end > got[0].start {
				s.start = max(s.start, got[0].start)
				kept = append(kept, s)
			}
		}
		req = kept
	}
	return req
}

// uncovered returns the parts of want that the spans of have (sorted by
// time) do not cover, allowing 1 ms of rounding.
func uncovered(want, have []spanNS) []spanNS {
	const slack = int64(time.Millisecond)
	var miss []spanNS
	for _, w := range want {
		pos := w.start
		for _, h := range have {
			if pos >= w.end-slack {
				break
			}
			if h.end <= pos || h.start >= w.end {
				continue
			}
			if h.start > pos+slack {
				miss = append(miss, spanNS{pos, h.start})
			}
			pos = max(pos, h.end)
		}
		if pos < w.end-slack {
			miss = append(miss, spanNS{pos, w.end})
		}
	}
	return miss
}

// fsckBenign are what fsck.vfat reports of a FAT card after a power cut
// that leaves it usable: the dirty bit (and the boot sector's backup that
// differs by it), a free-cluster count out of date, clusters allocated
// to no file, and clusters allocated past a file's end (a growth whose
// new size a cut kept from the card: camd frees them when it next opens
// the file to write; space leaked until then), and the table's two
// copies differing while both are whole. A chain shorter than its file,
// or one through a free cluster, is damage.
var fsckBenign = []string{"fsck.fat ", "There are differences between boot sector and its backup",
	"This is mostly harmless", "Differences: (offset:original/backup)", "65:01/00", "65:00/01",
	"Not automatically fixing this", "Dirty bit is set", "Automatically removing dirty bit",
	"Free cluster summary wrong", "Auto-correcting", "Reclaimed ", "Leaving filesystem unchanged", ".fsck: ",
	"cluster chain length is > ", "Truncating file to ", "/camd/vol-",
	// The table's second copy not yet written like the first (the kernel
	// reads the first).
	"FATs differ but appear to be intact", "Using first FAT"}

// damage is what of fsck's findings is more than fsckBenign ("" for
// none).
func damage(fsck string) string {
	var bad []string
	for _, l := range strings.Split(fsck, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !slices.ContainsFunc(fsckBenign, func(b string) bool { return strings.Contains(l, b) }) {
			bad = append(bad, l)
		}
	}
	return strings.Join(bad, "\n")
}

// fsck checks a copy of the card without changing it and returns what it
// found ("" when clean).
func (p *powerCut) fsck() string {
	copyPath := p.card + ".fsck"
	defer os.Remove(copyPath)
	if p.dataOnCard { // the recordings' partition
		f, err := os.Create(copyPath)
		if err == nil {
			err = f.Truncate(cardSize)
		}
		if err == nil {
			err = copySparse(f, 0, p.card, cardStart, cardSize)
		}
		if f != nil {
			f.Close()
		}
		if err != nil {
			p.t.Fatal(err)
		}
	} else if out, err := exec.Command("cp", "--sparse=always", p.card, copyPath).CombinedOutput(); err != nil {
		p.t.Fatalf("cp: %v\n%s", err, out)
	}
	if p.fs.name == "ext4" {
		// The journal first, as a mount would (e2fsck -n leaves it
		// unreplayed, and reports what it holds as damage).
		exec.Command("e2fsck", "-y", "-E", "journal_only", copyPath).Run()
	}
	out, err := exec.Command(p.fs.fsck[0], append(p.fs.fsck[1:], copyPath)...).CombinedOutput()
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%s: %v: %s", p.fs.fsck[0], err, bytes.TrimSpace(out))
}

// repair repairs the card (not one with camd's data on it) as its owner
// would with fsck, and returns what fsck said.
func (p *powerCut) repair() string {
	out, _ := exec.Command(p.fs.repair[0], append(p.fs.repair[1:], p.card)...).CombinedOutput()
	return string(bytes.TrimSpace(out))
}

// seconds formats a duration in seconds.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }

// stateReport is what camd made of one crash state.
type stateReport struct {
	entry    int // the state: the card after the log's first entry entries
	problems []string
	fsck     string
}

// sweep checks crash states of the card log of boot b (of a card with
// camd's data on it, so that the one log orders all camd wrote): for each write
// among entries from to to, the card as it would be had the power been
// cut right after it, with nothing later reaching the card, whether or
// not it was flushed. Each state is booted once and must be recovered as
// after a cut: the card mounts read-write, camd records, nothing is
// quarantined or reported missing, and bbolt's checks pass after a clean
// stop.
func (p *powerCut) sweep(b *boot, from, to int) []stateReport {
	t := p.t
	t.Helper()
	work := filepath.Join(p.dir, "sweep.img")
	if out, err := exec.Command("cp", "--sparse=always", b.base, work).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	f, err := os.OpenFile(work, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log := b.cardLog
	if err := log.Replay(f, from); err != nil {
		t.Fatal(err)
	}
	var reports []stateReport
	for i := from; i < min(to, len(log.Entries)); i++ {
		if err := log.Apply(f, i); err != nil {
			t.Fatal(err)
		}
		if log.Entries[i].Sectors == 0 {
			continue // a flush: the same state as before it
		}
		state := filepath.Join(p.dir, "state.img")
		if out, err := exec.Command("cp", "--sparse=always", work, state).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		p.card, p.quarantined, p.seen = state, 0, map[string]bool{}
		r := stateReport{entry: i + 1, fsck: p.fsck()}
		next := p.boot(bootOptions{final: 2 * time.Second})
		switch {
		case next.recovered == nil:
			r.problems = append(r.problems, "camd did not start: "+strings.Join(next.errors, "; "))
		case !strings.HasPrefix(next.mount, "rw"):
			r.problems = append(r.problems, "the card was mounted "+next.mount)
		case !next.newRecordings:
			r.problems = append(r.problems, "camd did not record: "+next.recovered.Status.Paused)
		}
		if next.recovered != nil {
			r.problems = append(r.problems, p.recoveryProblems(next)...)
		}
		if next.final == nil {
			r.problems = append(r.problems, "no clean stop")
		} else if next.final.Catalog != "ok" || slices.ContainsFunc(mapValues(next.final.Volumes), func(v string) bool { return v != "ok" }) {
			r.problems = append(r.problems, fmt.Sprintf("checks after a clean stop: %+v", *next.final))
		}
		reports = append(reports, r)
	}
	return reports
}
