package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// stallTimeout ends a download that received nothing for this long; the
// part is kept for the next attempt.
const stallTimeout = time.Minute

// bufSize is the one buffer a download reads through: the image streams
// from the network to the file and the hash, never held whole in memory.
const bufSize = 64 << 10

// download fetches url into path, resuming from what path already holds
// (an HTTP Range request), and verifies that the whole file is size bytes
// whose SHA-256 is sum. The hash runs over the bytes as they are written
// (first over the part already on disk). A download cut short keeps its
// part for the next attempt and returns ErrTruncated; a wrong hash or
// size removes the file and returns ErrHash. progress, if not nil, is
// told the bytes on disk after each read.
func download(ctx context.Context, client *http.Client, url, path string, size int64, sum string, progress func(done, total int64)) error {
	want, err := hex.DecodeString(sum)
	if err != nil {
		return fmt.Errorf("%w: sha256 %q", ErrManifest, sum)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	buf := make([]byte, bufSize)
	h := sha256.New()
	have, err := hashPart(f, h, size, buf)
	if err != nil {
		return err
	}
	if have < size {
		if have, err = fetch(ctx, client, url, f, h, have, size, buf, progress); err != nil {
			return err
		}
	}
	if progress != nil {
		progress(have, size)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%w: got %x", ErrHash, h.Sum(nil))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// hashPart hashes what f holds already, at most size bytes (more is cut
// off), and leaves f's offset at its end.
func hashPart(f *os.File, h hash.Hash, size int64, buf []byte) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	if fi.Size() > size {
		if err := f.Truncate(0); err != nil {
			return 0, fmt.Errorf("update: %w", err)
		}
	}
	n, err := io.CopyBuffer(h, io.LimitReader(f, size), buf)
	if err != nil {
		return 0, fmt.Errorf("update: reading the partial download: %w", err)
	}
	return n, nil
}

// fetch appends the image from offset have to f and h; it returns the
// bytes f holds.
func fetch(ctx context.Context, client *http.Client, url string, f *os.File, h hash.Hash, have, size int64, buf []byte, progress func(done, total int64)) (int64, error) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stalled := time.AfterFunc(stallTimeout, cancel)
	defer stalled.Stop()
	req, err := http.NewRequestWithContext(reqCtx, "GET", url, nil)
	if err != nil {
		return have, fmt.Errorf("update: %w", err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return have, fmt.Errorf("update: image: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return have, fmt.Errorf("update: image: server answered the range from %q, asked from %d", resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusOK:
		// The whole image again (a server without ranges): start over.
		if have > 0 {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return have, fmt.Errorf("update: %w", err)
			}
			if err := f.Truncate(0); err != nil {
				return have, fmt.Errorf("update: %w", err)
			}
			h.Reset()
			have = 0
		}
	default:
		return have, fmt.Errorf("update: image: %s", resp.Status)
	}
	// One byte more than the image: a longer answer is not the image.
	body := io.LimitReader(resp.Body, size-have+1)
	for {
		n, rerr := body.Read(buf)
		stalled.Reset(stallTimeout)
		if n > 0 {
			if have+int64(n) > size {
				return have, fmt.Errorf("%w: the server sent more than %d bytes", ErrHash, size)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return have, fmt.Errorf("update: %w", err)
			}
			h.Write(buf[:n])
			have += int64(n)
			if progress != nil {
				progress(have, size)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			switch {
			case ctx.Err() != nil:
				return have, fmt.Errorf("update: image: %w", ctx.Err())
			case reqCtx.Err() != nil:
				return have, fmt.Errorf("%w: %d of %d bytes: nothing received for %s", ErrTruncated, have, size, stallTimeout)
			}
			return have, fmt.Errorf("%w: %d of %d bytes: %v", ErrTruncated, have, size, rerr)
		}
	}
	if have < size {
		return have, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, have, size)
	}
	return have, nil
}

// rangeStart reads the first byte of "bytes START-END/SIZE".
func rangeStart(cr string) (int64, bool) {
	s, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, "-")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, ok && err == nil
}
