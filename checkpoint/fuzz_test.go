package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any file either loads as a consistent checkpoint or is refused;
// nothing panics.
func FuzzLoad(f *testing.F) {
	b, err := os.ReadFile("../assets/pretrained/mnist-clf.run/" + File)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:2048])
	f.Add([]byte("CDSUM1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), File)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if ck, err := Load(path); err == nil {
			if err := ck.Config.Validate(); err != nil {
				t.Fatalf("loaded an invalid config: %v", err)
			}
		}
	})
}
