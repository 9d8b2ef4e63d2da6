package api

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestMJPEG: the stream is multipart JPEGs at the shared rate, a key's
// Basic credentials open it, clients beyond the limit get 503, and
// CloseStreams ends the streams being served.
func TestMJPEG(t *testing.T) {
	snaps := &Snapshots{Stills: &fakeStills{available: true}, Logger: discard, MJPEGRate: 20, MJPEGClients: 1}
	srv := httptest.NewServer(serve(tokens, discard, snaps.routes(), nil))
	defer srv.Close()
	get := func(auth func(*http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/mjpeg", nil)
		auth(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := get(func(*http.Request) {}); res.StatusCode != 401 {
		t.Fatalf("without a credential: %d", res.StatusCode)
	}
	res := get(func(r *http.Request) { r.SetBasicAuth("k1", "s3cret") })
	defer res.Body.Close()
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != 200 || err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(res.Body, params["boundary"])
	start := time.Now()
	for i := range 4 {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		b, _ := io.ReadAll(p)
		if p.Header.Get("Content-Type") != "image/jpeg" || string(b) != "\xff\xd8jpeg" {
			t.Fatalf("part %d: %v %q", i, p.Header, b)
		}
	}
	// Four frames at 20 fps take at least three periods.
	if d := time.Since(start); d < 3*time.Second/20 {
		t.Fatalf("4 frames in %v: the rate is not bounded", d)
	}
	if res2 := get(func(r *http.Request) { r.Header.Set("Authorization", "Bearer viewer-token") }); res2.StatusCode != 503 {
		t.Fatalf("a second client over the limit: %d", res2.StatusCode)
	}
	snaps.CloseStreams()
	for {
		if _, err := mr.NextPart(); err != nil {
			break // the stream ended
		}
	}
}

func TestMJPEGWithoutPictures(t *testing.T) {
	routes := (&Snapshots{Stills: &fakeStills{}, Logger: discard}).routes()
	w := do(t, routes, request{method: "GET", path: "/api/v1/mjpeg", token: "key-token"})
	answer(t, w, 501, nil)
	w = do(t, routes, request{method: "GET", path: "/api/v1/snapshot.jpg", token: "key-token"})
	answer(t, w, 501, nil)
}
