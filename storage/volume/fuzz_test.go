package volume

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheck feeds arbitrary files to Check and Open: whatever the bytes,
// the answer is a volume or an error, never a crash.
func FuzzCheck(f *testing.F) {
	dir := f.TempDir()
	v, err := Create(filepath.Join(dir, "seed.db"), 1, Options{MaxSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		v.Append(frag(1, i), data(3000, byte(i)), []byte("init"))
	}
	v.Close()
	seed, _ := os.ReadFile(v.Path())
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("not a volume"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "v.db")
		os.WriteFile(path, b, 0o600)
		if Check(path, Options{}) != nil {
			return
		}
		if v, err := Open(path, Options{ReadOnly: true}); err == nil {
			v.All(func(f Fragment) bool { v.Read(f.Key, nil); return true })
			v.Close()
		}
	})
}
