//go:build camd_nometrics

package metrics

import "net/http"

// Handler, in a build with the camd_nometrics tag (the lean embedded
// builds: the Prometheus client and its protobuf code cost about 1.5 MB),
// answers every scrape 501 Not Implemented; the token routes still work,
// so a Prometheus server set up against another build fails plainly.
func Handler(Sources) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotImplemented)
		w.Write([]byte(`{"error":"metrics: not in this build (camd_nometrics)"}` + "\n"))
	})
}
