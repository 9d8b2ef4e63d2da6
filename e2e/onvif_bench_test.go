package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/onvif"
)

// BenchmarkONVIFGetStreamURI: an NVR's GetStreamUri round trip to a
// running camd over loopback HTTP, with a fresh UsernameToken each time
// (the key's secret derived and the digest checked by VerifyKey, the
// replay cache), on a keep-alive connection as NVRs keep one.
func BenchmarkONVIFGetStreamURI(b *testing.B) {
	d := startDaemon(b, "--config", writeConfig(b, "rtsp: {listen: 127.0.0.1:0, rtp_port: 0}\nonvif: {listen: 127.0.0.1:0}\n"))
	id, secret, _ := d.streamKey(b, "nvr")
	host, port := d.onvifAddr(b)
	url := "http://" + host + ":" + port + onvif.MediaPath
	const body = `<GetStreamUri xmlns="http://www.onvif.org/ver10/media/wsdl"><StreamSetup><Stream xmlns="http://www.onvif.org/ver10/schema">RTP-Unicast</Stream>` +
		`<Transport xmlns="http://www.onvif.org/ver10/schema"><Protocol>RTSP</Protocol></Transport></StreamSetup><ProfileToken>main</ProfileToken></GetStreamUri>`
	client := &http.Client{Timeout: 10 * time.Second}
	samples := make([]float64, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := onvif.Envelope(onvif.SecurityHeader(id, secret, time.Now()), body)
		start := time.Now()
		res, err := client.Post(url, "application/soap+xml", strings.NewReader(req))
		if err != nil {
			b.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		samples = append(samples, float64(time.Since(start).Microseconds())/1000)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(answer), "rtsp://127.0.0.1:") {
			b.Fatalf("%d %s", res.StatusCode, answer)
		}
	}
	b.ReportMetric(percentile(samples, 0.5), "ms-p50")
	b.ReportMetric(percentile(samples, 0.9), "ms-p90")
}
