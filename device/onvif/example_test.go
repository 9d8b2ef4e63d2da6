package onvif_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/camd-project/camd/device/onvif"
)

// A server that knows one stream key answers GetStreamUri with the RTSP
// URL on the address the client used.
func Example() {
	srv, _ := onvif.New(onvif.Options{
		Verify: func(user string, proof func(secret string) bool) (string, error) {
			if user == "3f9a2b1c0d4e5f60" && proof("the key's secret") {
				return "key:" + user, nil
			}
			return "", fmt.Errorf("unknown key")
		},
		RTSPPort: 8554, RTSPPath: "/live",
	})
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	req := onvif.Envelope(onvif.SecurityHeader("3f9a2b1c0d4e5f60", "the key's secret", time.Now()),
		`<GetStreamUri xmlns="http://www.onvif.org/ver10/media/wsdl"><ProfileToken>main</ProfileToken></GetStreamUri>`)
	res, err := http.Post(ts.URL+onvif.MediaPath, "application/soap+xml", strings.NewReader(req))
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	uri := string(b)[strings.Index(string(b), "<tt:Uri>")+len("<tt:Uri>"):]
	fmt.Println(res.StatusCode, uri[:strings.Index(uri, "<")])
	// Output: 200 rtsp://127.0.0.1:8554/live
}
