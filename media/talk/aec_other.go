//go:build !(cgo && linux && (amd64 || camd_speexdsp))

package talk

// newEngine: a build without cgo (or speexdsp) has no echo canceller.
func newEngine(frame, tail int, suppress bool) (engine, error) { return nil, ErrNoEchoCanceller }
