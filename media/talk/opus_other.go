//go:build !(cgo && linux && (amd64 || arm64 || arm))

package talk

// newOpus: a build without cgo (or libopus) plays G.711 only.
func newOpus() (decoder, error) { return nil, ErrCodec }
