package synthetic

import "github.com/camd-project/camd/media"

// RawFunc receives each picture before it is encoded; see media.RawFunc.
type RawFunc = media.RawFunc
