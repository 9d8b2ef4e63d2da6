// Command cardguest is the init (PID 1) of the power-cut tests' guest: a
// Linux kernel booted under QEMU from an initramfs that holds this
// program, camd, a video file and the kernel modules of the card's file
// system. It mounts the device's own flash (/dev/vda, ext4, camd's data
// directory) and the card (/dev/vdb, the file system under test), starts
// camd recording the video file to the card, and reports on the serial
// console, one line each, prefixed "@pc ":
//
//	tick UNIXNS                 the guest's clock, every 100 ms
//	mount card OPTIONS          how the card is mounted (ro: the kernel refused it read-write)
//	token TOKEN                 the owner's credential, after pairing on the first boot
//	recovered JSON              what camd reports after its start: timeline, status, events, files
//	check FILE ok|ERROR         bbolt's check of a closed volume on the card
//	ack FIRST START END N BYTES camd's timeline: N spans from FIRST (Unix ns), the last one
//	                            from START to END; BYTES recorded since camd started
//	log LINE                    a line of camd's log
//	final JSON                  after a clean stop: catalog and every volume checked
//	error TEXT                  the guest could not do its part
//
// The kernel command line says what to do: camd.fs (ext4, vfat or exfat),
// camd.token (the credential of an earlier boot), camd.data=card (camd's
// data directory in the card's second partition rather than on the
// flash, the recordings in its first) and camd.final=SECONDS
// (stop camd cleanly that long after its first fragment, or 20 s later
// without one, check the files and power off, instead of recording
// until the host cuts the power).
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/e2e/guestinit"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

const (
	dataDir  = "/data/camd"
	config   = "/camd.yaml"
	cardDir  = "/card/camd"
	addr     = "127.0.0.1:8443"
	camdPath = "/camd"
)

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

// report writes one line to the console.
func report(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, "@pc "+format+"\n", args...)
	out.w.Flush()
}

func main() {
	if err := run(); err != nil {
		report("error %v", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	if err := guestinit.Mount(); err != nil {
		return err
	}
	go ticks()
	args := guestinit.Args()
	if err := guestinit.LoadModules("/modules", nil); err != nil {
		return err
	}
	// The data directory is on the flash, or (camd.data=card) in the
	// card's second partition, the recordings in its first.
	flash, card := "flash", "card"
	if args["data"] == "card" {
		flash, card = "card2", "card1"
	}
	if err := mountDisk(flash, "/data", "ext4"); err != nil {
		return err
	}
	if err := mountDisk(card, "/card", args["fs"]); err != nil {
		return err
	}
	report("mount card %s", mountOptions("/card"))
	if err := guestinit.LoopbackUp(); err != nil {
		return err
	}
	// The directories camd is given exist before it starts, durably: on
	// a camera they were made long before (what camd makes in them is
	// what the test is about).
	for _, d := range []string{dataDir, cardDir} {
		if err := makeDurableDir(d); err != nil {
			return err
		}
	}

	camd := exec.Command(camdPath, "run", "--config", config)
	stderr, _ := camd.StderrPipe()
	camd.Stdout = os.Stderr // camd prints its errors there too
	if err := camd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			report("log %s", sc.Text())
		}
		exited <- camd.Wait()
	}()
	c := &client{http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the guest's own camd on loopback
	}}}
	if err := waitServing(c, exited); err != nil {
		return err
	}
	c.token = args["token"]
	if c.token == "" {
		if err := c.pair(); err != nil {
			return err
		}
		report("token %s", c.token)
	}
	if err := recovered(c); err != nil {
		return err
	}
	checkClosed()
	// A final boot records for its time from camd's first fragment (a
	// loaded host's guest may take seconds to get there), or stops 20 s
	// later than that without one (a card camd cannot record to).
	var deadline <-chan time.Time
	final, err := time.ParseDuration(args["final"] + "s")
	recording := false
	if err == nil && final > 0 {
		deadline = time.After(final + 20*time.Second)
	}
	// The acknowledgements: camd's timeline, as an owner would see it.
	var last string
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("camd exited: %v", err)
		case <-deadline:
			camd.Process.Signal(syscall.SIGTERM)
			if err := <-exited; err != nil {
				return fmt.Errorf("camd stopped with %v", err)
			}
			return finalCheck()
		case <-time.After(200 * time.Millisecond):
		}
		var tl timeline
		if err := c.get(timelineQuery, &tl); err != nil {
			report("error timeline: %v", err)
			continue
		}
		if final > 0 && !recording && tl.Status.Written > 0 {
			recording, deadline = true, time.After(final)
		}
		if len(tl.Spans) == 0 {
			continue
		}
		first, end := tl.Spans[0], tl.Spans[len(tl.Spans)-1]
		ack := fmt.Sprintf("%d %d %d %d %d", first.Start.UnixNano(), end.Start.UnixNano(), end.End.UnixNano(),
			len(tl.Spans), tl.Status.Written)
		if ack != last {
			last = ack
			report("ack %s", ack)
		}
	}
}

// makeDurableDir makes dir and fsyncs it and its parent.
func makeDurableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("fsync %s: %w", d, err)
		}
	}
	return nil
}

// ticks reports the guest's clock, so that the host can tell when, on
// this clock, it cut the power.
func ticks() {
	for {
		report("tick %d", time.Now().UnixNano())
		time.Sleep(100 * time.Millisecond)
	}
}

// disks are the devices mounted, by mount point.
var disks = map[string]string{}

// mountDisk mounts the virtio disk whose serial number is name (or, for
// name+N, its N-th partition) at dir, once it shows up.
func mountDisk(name, dir, fs string) error {
	os.MkdirAll(dir, 0o755)
	serial, part := strings.TrimRight(name, "0123456789"), strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz")
	var dev string
	for deadline := time.Now().Add(30 * time.Second); dev == ""; time.Sleep(50 * time.Millisecond) {
		disks, _ := filepath.Glob("/sys/block/vd*/serial")
		for _, d := range disks {
			if b, _ := os.ReadFile(d); strings.TrimSpace(string(b)) == serial {
				dev = "/dev/" + filepath.Base(filepath.Dir(d)) + part
			}
		}
		if _, err := os.Stat(dev); err != nil {
			dev = ""
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("disk %s never appeared", serial)
		}
	}
	if err := unix.Mount(dev, dir, fs, 0, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, fs, dir, err)
	}
	disks[dir] = dev
	return nil
}

// mountOptions are the options /proc/mounts shows for dir.
func mountOptions(dir string) string {
	b, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == dir {
			return f[3]
		}
	}
	return "?"
}

type client struct {
	http  *http.Client
	token string
}

func (c *client) do(method, path string, body, answer any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+addr+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if answer != nil {
		return json.Unmarshal(b, answer)
	}
	return nil
}

func (c *client) get(path string, answer any) error { return c.do("GET", path, nil, answer) }

func waitServing(c *client, exited <-chan error) error {
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			return fmt.Errorf("camd exited before serving: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if c.get("/health", nil) == nil {
			return nil
		}
	}
	return errors.New("camd did not serve within 120 s")
}

// pair pairs as the owner, as camctl would, with the code camd qr shows.
func (c *client) pair() error {
	b, err := exec.Command(camdPath, "qr", "--data", dataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("camd qr: %v: %s", err, b)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	p, err := pairing.Parse(lines[len(lines)-1])
	if err != nil {
		return err
	}
	var st struct {
		Nonce    []byte `json:"nonce"`
		DeviceID string `json:"device_id"`
	}
	if err := c.do("POST", "/api/v1/pair/start", map[string]string{"invite_id": ""}, &st); err != nil {
		return err
	}
	var done struct {
		Token string `json:"token"`
	}
	proof := pairing.Proof(p.Secret[:], st.DeviceID, st.Nonce, "power-cut test")
	req := map[string]any{"nonce": st.Nonce, "name": "power-cut test", "proof": proof, "invite_id": ""}
	if err := c.do("POST", "/api/v1/pair/finish", req, &done); err != nil {
		return err
	}
	c.token = done.Token
	return nil
}

type span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type timeline struct {
	Spans  []span `json:"spans"`
	Status status `json:"status"`
}

type status struct {
	Quarantined int    `json:"quarantined"`
	Paused      string `json:"paused"`
	Volumes     int    `json:"volumes"`
	Written     int64  `json:"bytes_written"`
}

// Recovered is what camd reports after it started on the card a power cut
// left: the test compares it with what camd acknowledged before the cut.
type Recovered struct {
	Spans  []span `json:"spans"`
	Status status `json:"status"`
	// Events are the kinds of recording events camd logged, oldest first.
	Events []string `json:"events"`
	// Messages are their texts.
	Messages []string `json:"messages"`
	// Files are the card's recording directory, quarantine included, and
	// Damaged the files camd moved aside in its data directory.
	Files   []string `json:"files"`
	Damaged []string `json:"damaged"`
}

// timelineQuery asks for camd's whole timeline, also what lies ahead of
// the guest's clock: under emulation on a loaded host a guest's clock
// may run ahead of the next boot's by tens of seconds, and camd then
// keeps what it recorded "later" (until retention takes it) while it
// records on from an earlier time.
const timelineQuery = "/api/v1/recordings?from=-24h&to=%2B1h"

func recovered(c *client) error {
	var r Recovered
	var tl timeline
	if err := c.get(timelineQuery, &tl); err != nil {
		return err
	}
	r.Spans, r.Status = tl.Spans, tl.Status
	var events []struct {
		Kind    string `json:"type"`
		Message string `json:"message"`
	}
	if err := c.get("/api/v1/events?limit=1000", &events); err != nil {
		return err
	}
	for i := len(events) - 1; i >= 0; i-- {
		if strings.HasPrefix(events[i].Kind, "recording.") {
			r.Events = append(r.Events, events[i].Kind)
			r.Messages = append(r.Messages, events[i].Message)
		}
	}
	r.Files = listFiles(cardDir)
	r.Damaged, _ = filepath.Glob(filepath.Join(dataDir, "*.damaged-*"))
	b, _ := json.Marshal(r)
	report("recovered %s", b)
	return nil
}

// listFiles lists dir and dir/quarantine with sizes.
func listFiles(dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		if info != nil {
			rel = fmt.Sprintf("%s:%d", rel, info.Size())
		}
		files = append(files, rel)
		return nil
	})
	sort.Strings(files)
	return files
}

// checkClosed runs bbolt's check on the card's volumes that camd does not
// hold open for writing (it checked that one itself when it started).
func checkClosed() {
	vols, _ := filepath.Glob(filepath.Join(cardDir, "vol-*.db"))
	for _, v := range vols {
		if locked(v) {
			continue // camd writes it
		}
		err := volume.Check(v, volume.Options{})
		switch {
		case errors.Is(err, volume.ErrLocked):
			// camd took it since: the volume it started meanwhile.
		case err != nil:
			report("check %s %v", filepath.Base(v), err)
		default:
			report("check %s ok", filepath.Base(v))
		}
	}
}

// locked reports whether another process holds path's lock for writing,
// as bbolt takes it (flock).
func locked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Final is the check after a clean stop.
type Final struct {
	Catalog string            `json:"catalog"`
	Volumes map[string]string `json:"volumes"`
}

func finalCheck() error {
	f := Final{Catalog: "ok", Volumes: map[string]string{}}
	cat, err := storage.OpenCatalog(filepath.Join(dataDir, "catalog.db"), storage.CatalogOptions{})
	if err == nil {
		err = cat.Check()
		cat.Close()
	}
	if err != nil {
		f.Catalog = err.Error()
	}
	vols, _ := filepath.Glob(filepath.Join(cardDir, "vol-*.db"))
	for _, v := range vols {
		f.Volumes[filepath.Base(v)] = "ok"
		if err := volume.Check(v, volume.Options{}); err != nil {
			f.Volumes[filepath.Base(v)] = err.Error()
		}
	}
	b, _ := json.Marshal(f)
	report("final %s", b)
	// An orderly shutdown: unmount, then flush each disk's cache (the
	// kernel's power-off does not).
	for _, dir := range []string{"/card", "/data"} {
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		f, err := os.OpenFile(disks[dir], os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("flushing %s: %w", disks[dir], err)
		}
	}
	return nil
}
