package export

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/camd-project/camd/media/fmp4/fmp4test"
)

// A clip (here in memory; storage/recordings.Store.Clip in camd) served
// as one MP4 file: its size is known before a byte is read, so a range
// request reads only the fragments it covers.
func ExampleNew() {
	clip := clipOf(fragments(&fmp4test.Source{Start: day}, 10*time.Second))
	f, err := New(clip)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/clip.mp4", nil)
	req.Header.Set("Range", "bytes=0-99")
	http.ServeContent(w, req, "clip.mp4", f.End, f)
	fmt.Println(w.Code, w.Header().Get("Content-Range"), f.Fragments(), "fragments")
	// Output: 206 bytes 0-99/271226 10 fragments
}
