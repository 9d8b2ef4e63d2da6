package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// details is where a benchmark writes what went wrong, in full (a
// benchmark's log is cut at 10 lines): CAMD_BENCH_OUT/name.txt, or the
// temporary directory's camd-bench/name.txt.
type details struct {
	b    *testing.B
	path string
	f    *os.File
}

func newDetails(b *testing.B) *details {
	dir := os.Getenv("CAMD_BENCH_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "camd-bench")
	}
	os.MkdirAll(dir, 0o755)
	d := &details{b: b, path: filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "-")+".txt")}
	var err error
	if d.f, err = os.Create(d.path); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.f.Close() })
	return d
}

func (d *details) printf(format string, args ...any) {
	fmt.Fprintf(d.f, format+"\n", args...)
}

// summary logs how many findings the file holds.
func (d *details) summary(n int) {
	if n > 0 {
		d.b.Logf("%d findings, in full in %s", n, d.path)
	}
}

// BenchmarkPowerCut cuts the power b.N times per file system (make bench:
// -benchtime 24x), each boot starting from the card the previous cut
// left, and reports the recording lost at each cut (min, median, max: the
// goal is at most 1 s), the cuts that lost recording camd had reported,
// the cards left unusable (mounted read-only, or camd could not record
// again) and what fsck said of the cards the cuts left. What reached the
// card (bytes written per byte of media, flushes per second; goals 1.15
// and 2, docs/storage.md) is measured twice: over 20 s of a first boot on
// the card as formatted (first_fill_*: every volume in a new file), and
// over 50 s of a last boot, after the cuts, that records for 60 s in the
// ring of volume files (the steady state).
func BenchmarkPowerCut(b *testing.B) {
	for _, fs := range []string{"ext4", "fat32", "exfat"} {
		b.Run(fs, func(b *testing.B) {
			p := newPowerCut(b, fs, false)
			out, findings := newDetails(b), 0
			var lost, ready, lags, lagMaxes []time.Duration
			var ackLost, unusable, problems, damaged, leaked int
			var ackLostTime time.Duration
			// A card camd cannot record to stays so (the kernel makes a
			// damaged FAT read-only at every mount): the owner repairs it
			// with fsck, and the cuts go on.
			prev := (*boot)(nil)
			fsck := ""
			cut := 0
			tally := func(next *boot) {
				if prev == nil {
					return
				}
				r := p.check(prev, next, fsck)
				// A boot on a card camd could not record to was cut with
				// nothing being recorded: no loss to measure.
				if prev.newRecordings {
					lost = append(lost, r.lost)
					lags = append(lags, r.lag)
					lagMaxes = append(lagMaxes, r.lagMax)
				}
				if r.unusable {
					out.printf("cut %d left the card unusable; repaired: %s\n", cut, p.repair())
				}
				if len(r.missing) > 0 {
					ackLost++
				}
				for _, m := range r.missing {
					ackLostTime += time.Duration(m.end - m.start)
				}
				if r.unusable {
					unusable++
				}
				if len(r.problems) > 0 {
					problems++
				}
				switch {
				case damage(r.fsck) != "":
					damaged++
				case r.fsck != "":
					leaked++
				}
				if len(r.missing) > 0 || len(r.problems) > 0 || r.lost > time.Second || damage(r.fsck) != "" {
					findings++
					out.printf("cut %d (%v after the first fragment): lost %ss (report lag %ss)\nmissing: %v\nproblems:\n  %s\nfsck: %s\ncard files after: %v\n",
						cut, prev.cutAfter.Round(time.Millisecond), seconds(r.lost), seconds(r.lag), r.missing,
						strings.Join(r.problems, "\n  "), r.fsck, next.recovered.filesOrNil())
					if len(r.missing) > 0 || len(r.problems) > 0 {
						out.printf("reported before the cut (Unix ns): %v\ncamd's log before the cut:\n  %s\ncamd's log after it:\n  %s\n",
							prev.required, strings.Join(prev.log, "\n  "), strings.Join(next.log, "\n  "))
					} else {
						// What camd was doing (a new volume, a stall):
						// its last lines, and the cut on the guest's clock.
						out.printf("cut at %s (guest clock), after camd's last report by %ss; camd's last lines:\n  %s\n",
							time.Unix(0, prev.cutAt).UTC().Format(time.StampMilli), seconds(time.Duration(prev.cutAt-prev.lastAck)),
							strings.Join(prev.log[max(0, len(prev.log)-6):], "\n  "))
					}
				}
			}
			// The first fill: a boot on the card as formatted records
			// for 30 s and measures 20 s of it, while every volume is
			// still made in a new file that grows (on FAT and exFAT, by
			// writing zeros first). It stops cleanly: the cuts below
			// start from its card.
			first := p.boot(bootOptions{final: 30 * time.Second, measure: 20 * time.Second})
			for b.Loop() {
				cut++
				o := bootOptions{cutAfter: time.Second + rand.N(12*time.Second)}
				next := p.boot(o)
				next.cutAfter = o.cutAfter
				tally(next)
				ready = append(ready, next.ready)
				prev, fsck = next, p.fsck()
			}
			// 50 s measured: the window's ends fall between a commit
			// and its report, each a fragment (4-5 % of 20 s) either way.
			last := p.boot(bootOptions{final: 60 * time.Second, measure: 50 * time.Second})
			tally(last)
			if fsck := p.fsck(); damage(fsck) != "" {
				findings++
				out.printf("fsck after the last, clean stop: %s\n", fsck)
				damaged++
			}
			if last.final == nil || last.final.Catalog != "ok" || slices.ContainsFunc(mapValues(last.final.Volumes), func(v string) bool { return v != "ok" }) {
				findings++
				out.printf("checks after the last, clean stop: %+v %v\n", last.final, last.errors)
				problems++
			}
			out.printf("lost at each cut (s): %v", lost)
			out.printf("report lag before each cut, median and longest (s): %v %v", lags, lagMaxes)
			out.summary(findings)
			slices.Sort(lost)
			if len(lost) > 0 {
				b.ReportMetric(lost[0].Seconds(), "lost_s_min")
				b.ReportMetric(lost[len(lost)/2].Seconds(), "lost_s_median")
				b.ReportMetric(lost[len(lost)-1].Seconds(), "lost_s_max")
			}
			b.ReportMetric(mean(lags).Seconds(), "report_lag_s")
			if len(lagMaxes) > 0 {
				b.ReportMetric(slices.Max(lagMaxes).Seconds(), "report_lag_s_max")
			}
			b.ReportMetric(float64(ackLost), "cuts_losing_reported")
			b.ReportMetric(ackLostTime.Seconds(), "reported_lost_s")
			b.ReportMetric(float64(unusable), "cards_unusable")
			b.ReportMetric(float64(problems), "cuts_with_recovery_problems")
			b.ReportMetric(float64(damaged), "fsck_damaged")
			b.ReportMetric(float64(leaked), "fsck_leaked_only")
			// The last boot records in the ring of volume files the
			// first pass made (the quota, 8 MiB, fills in about 30 s):
			// the steady state, which a camera is in for all but its
			// first pass over the quota.
			if w := last.window; w != nil && w.media > 0 {
				b.ReportMetric(float64(w.bytes)/float64(w.media), "card_written/recorded")
				b.ReportMetric(float64(w.flushes)/w.seconds, "flushes/s")
				b.ReportMetric(float64(w.writes)/w.seconds, "writes/s")
				b.ReportMetric(float64(w.zeros)/float64(w.media), "zeros/recorded")
				if fs == "fat32" {
					b.ReportMetric(float64(w.fatBytes)/float64(w.media), "fat_written/recorded")
				}
			}
			if w := first.window; w != nil && w.media > 0 {
				b.ReportMetric(float64(w.bytes)/float64(w.media), "first_fill_written/recorded")
				b.ReportMetric(float64(w.flushes)/w.seconds, "first_fill_flushes/s")
			}
			b.ReportMetric(mean(ready).Seconds(), "boot_to_recording_s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func mapValues(m map[string]string) []string {
	var v []string
	for _, s := range m {
		v = append(v, s)
	}
	return v
}

func (r *guestRecovered) filesOrNil() string {
	if r == nil {
		return "(camd did not start)"
	}
	return strings.Join(r.Files, " ")
}

// BenchmarkPowerCutSweep checks every crash state around the creation of
// a volume (the second of a boot, made beforehand while the first is
// written), per file
// system: the card after each write from 30 log entries before camd said
// it had made the volume (its file, its growth, its first pages and
// the catalog's records of it take about 20) to 5 after, whether flushed
// or not, camd's catalog in a partition of the card beside the volumes'. It reports the states checked,
// those camd did not recover cleanly and those fsck found damaged.
func BenchmarkPowerCutSweep(b *testing.B) {
	for _, fs := range []string{"fat32", "exfat", "ext4"} {
		b.Run(fs, func(b *testing.B) {
			p := newPowerCut(b, fs, true)
			cut := p.boot(bootOptions{cutAfter: time.Second, cutAtLog: "recordings: next volume ready", cutAtLogN: 1})
			if cut.mark == 0 {
				b.Fatal("camd never created its second volume")
			}
			var reports []stateReport
			for b.Loop() {
				reports = p.sweep(cut, max(cut.mark-30, 0), cut.mark+5)
			}
			out := newDetails(b)
			bad, damaged := 0, 0
			for _, r := range reports {
				if len(r.problems) > 0 {
					bad++
				}
				if damage(r.fsck) != "" {
					damaged++
				}
				if len(r.problems) > 0 || r.fsck != "" {
					out.printf("the card after log entry %d (the volume was created by entry %d):\nproblems:\n  %s\nfsck: %s\n",
						r.entry, cut.mark, strings.Join(r.problems, "\n  "), r.fsck)
				}
			}
			out.summary(bad + damaged)
			b.ReportMetric(float64(len(reports)), "states")
			b.ReportMetric(float64(bad), "states_not_recovered")
			b.ReportMetric(float64(damaged), "fsck_damaged")
			b.ReportMetric(0, "ns/op")
		})
	}
}
