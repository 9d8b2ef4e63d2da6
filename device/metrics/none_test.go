//go:build camd_nometrics

package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNoMetricsBuild: a build without metrics answers a scrape plainly.
// make vet runs it (go test -tags camd_nometrics).
func TestNoMetricsBuild(t *testing.T) {
	w := httptest.NewRecorder()
	Handler(Sources{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "not in this build") {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
}
