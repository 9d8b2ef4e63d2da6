// Package export makes a clip of recording (storage/recordings.Clip: the
// fragments of a time range, as the store keeps them) into one
// fragmented MP4 file: the init segment of the first fragment, then the
// fragments, renumbered and retimed to start at zero, stopping where the
// tracks change. Every fragment keeps its size when it is retimed, so the
// file's size is known before its first byte is read, and any byte range
// of it reads only the fragments it covers: it suits http.ServeContent
// (Range, If-Range) and media/playback alike.
//
// The store hands out bytes; this package is where they are read as MP4.
package export
