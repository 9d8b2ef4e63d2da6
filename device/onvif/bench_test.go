package onvif

import (
	"net/http"
	"testing"
)

// BenchmarkGetStreamURI is an ONVIF GetStreamUri round trip over
// loopback HTTP, as an NVR makes it: a fresh UsernameToken (digest,
// nonce), the key checked, the replay cache, the answer.
func BenchmarkGetStreamURI(b *testing.B) {
	f := newFixture(b, nil)
	const body = `<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`
	envs := make([]string, b.N)
	for i := range envs {
		envs[i] = f.envelope(f.key(), body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if a := f.post(MediaPath, envs[i]); a.status != http.StatusOK {
			b.Fatalf("%d %s", a.status, a.raw)
		}
	}
}
