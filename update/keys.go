package update

import (
	_ "embed"

	"aead.dev/minisign"
)

// BuildKeys, set at build time (-ldflags "-X
// github.com/camd-project/camd/update.BuildKeys=RWQ…,RWQ…"), replaces the
// keys of keys/trusted.pub.
var BuildKeys string

//go:embed keys/trusted.pub
var embeddedKeys string

// TrustedKeys are the keys baked into this build: BuildKeys if set, else
// keys/trusted.pub. None means this build cannot check for updates.
func TrustedKeys() ([]minisign.PublicKey, error) {
	if BuildKeys != "" {
		return ParseKeys(BuildKeys)
	}
	return ParseKeys(embeddedKeys)
}
