package e2e

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkPowerCut cuts the power b.N times per file system (make bench:
// -benchtime 24x), each boot starting from the card the previous cut
// left, and reports the recording lost at each cut (min, median, max: the
// goal is at most 1 s), the cuts that lost recording camd had reported,
// the cards left unusable (mounted read-only, or camd could not record
// again) and what fsck said of the cards the cuts left. A last boot
// records for 30 s and measures, over 20 s of it, what reached the card:
// bytes written per byte of media and flushes per second (docs/storage.md:
// goals 1.15 and 2).
func BenchmarkPowerCut(b *testing.B) {
	for _, fs := range []string{"ext4", "fat32", "exfat"} {
		b.Run(fs, func(b *testing.B) {
			p := newPowerCut(b, fs)
			var lost, ready []time.Duration
			var ackLost, unusable, problems, damaged, leaked int
			prev := (*boot)(nil)
			fsck := ""
			cut := 0
			tally := func(next *boot) {
				if prev == nil {
					return
				}
				r := p.check(prev, next, fsck)
				lost = append(lost, r.lost)
				if len(r.missing) > 0 {
					ackLost++
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
					b.Logf("%s cut %d (%v after the first fragment): lost %ss, missing %v, problems %v, fsck %q, card files after: %v",
						fs, cut, prev.cutAfter, seconds(r.lost), r.missing, r.problems, r.fsck, next.recovered.filesOrNil())
				}
			}
			for b.Loop() {
				cut++
				o := bootOptions{cutAfter: time.Second + rand.N(12*time.Second)}
				next := p.boot(o)
				next.cutAfter = o.cutAfter
				tally(next)
				ready = append(ready, next.ready)
				prev, fsck = next, p.fsck()
			}
			last := p.boot(bootOptions{final: 30 * time.Second, measure: 20 * time.Second})
			tally(last)
			if fsck := p.fsck(); damage(fsck) != "" {
				b.Logf("%s: fsck after the last, clean stop: %s", fs, fsck)
				damaged++
			}
			if last.final == nil || last.final.Catalog != "ok" || slices.ContainsFunc(mapValues(last.final.Volumes), func(v string) bool { return v != "ok" }) {
				b.Logf("%s: checks after the last, clean stop: %+v %v", fs, last.final, last.errors)
				problems++
			}
			slices.Sort(lost)
			if len(lost) > 0 {
				b.ReportMetric(lost[0].Seconds(), "lost_s_min")
				b.ReportMetric(lost[len(lost)/2].Seconds(), "lost_s_median")
				b.ReportMetric(lost[len(lost)-1].Seconds(), "lost_s_max")
			}
			b.ReportMetric(float64(ackLost), "cuts_losing_reported")
			b.ReportMetric(float64(unusable), "cards_unusable")
			b.ReportMetric(float64(problems), "cuts_with_recovery_problems")
			b.ReportMetric(float64(damaged), "fsck_damaged")
			b.ReportMetric(float64(leaked), "fsck_leaked_only")
			if w := last.window; w != nil && w.media > 0 {
				b.ReportMetric(float64(w.bytes)/float64(w.media), "card_written/recorded")
				b.ReportMetric(float64(w.flushes)/w.seconds, "flushes/s")
				b.ReportMetric(float64(w.writes)/w.seconds, "writes/s")
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
