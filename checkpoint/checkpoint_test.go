package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
)

// TestShippedCheckpointLoads: the checkpoints shipped in assets/ (written
// before the format's Go types moved here) load, with their config, step,
// schedule and training record.
func TestShippedCheckpointLoads(t *testing.T) {
	ck, err := Load("../assets/pretrained/mnist-cbn-v1.run")
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config.Kind != contract.Denoiser || ck.Config.Variant != contract.CBN || !ck.Config.NullClass || ck.Step < 1000 ||
		ck.Info.Schedule.T != 1000 || ck.Info.Dataset != "mnist" || len(ck.EMA) != len(ck.Params) || len(ck.AdamM) != len(ck.Params) {
		t.Fatalf("loaded %+v step %d", ck.Config, ck.Step)
	}
	log, err := ReadLog("../assets/pretrained/mnist-cbn-v1.run")
	if err != nil || len(log) != ck.Step || log[len(log)-1].Step != ck.Step {
		t.Fatalf("log: %d entries (err %v) for step %d", len(log), err, ck.Step)
	}
	clf, err := Load("../assets/pretrained/mnist-clf.run/" + File)
	if err != nil || clf.Config.Kind != contract.Classifier {
		t.Fatalf("classifier: %v", err)
	}
}

// TestLoadRefuses: a missing file is ErrNoCheckpoint; a checkpoint whose
// weights do not fit its config, or of another format, is refused with the
// file named; the round trip through Save keeps everything.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty run directory: %v", err)
	}
	ck, err := Load("../assets/pretrained/mnist-clf.run")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, File)
	if err := ck.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil || back.Step != ck.Step || back.Params["head.weight"].Data[3] != ck.Params["head.weight"].Data[3] {
		t.Fatalf("round trip: %v", err)
	}
	delete(back.EMA, "head.weight")
	if err := back.Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `ema: parameter "head.weight" missing`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing EMA weight: %v", err)
	}
	os.WriteFile(path, []byte("not gob"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "not a condiff checkpoint") {
		t.Fatalf("garbage: %v", err)
	}
}

// TestTruncateLog: resuming at step 2 drops later lines, keeping the rest.
func TestTruncateLog(t *testing.T) {
	dir := t.TempDir()
	body := `{"step":1,"loss":0.5,"img_per_s":3}` + "\n" + `{"step":2,"loss":0.4,"img_per_s":3}` + "\n" + `{"step":3,"loss":0.3,"img_per_s":3}` + "\n"
	os.WriteFile(filepath.Join(dir, LogFile), []byte(body), 0o644)
	if err := TruncateLog(filepath.Join(dir, LogFile), 2); err != nil {
		t.Fatal(err)
	}
	log, err := ReadLog(dir)
	if err != nil || len(log) != 2 || log[1].Step != 2 || log[1].Loss != 0.4 {
		t.Fatalf("after truncation: %+v %v", log, err)
	}
	if err := TruncateLog(filepath.Join(dir, "none.jsonl"), 2); err != nil {
		t.Fatalf("no log yet: %v", err)
	}
}

// TestChecksum: a flipped byte anywhere in a saved checkpoint is refused.
func TestChecksum(t *testing.T) {
	ck, err := Load("../assets/pretrained/mnist-clf.run")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), File)
	if err := ck.Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	for _, at := range []int{len(good) / 2, len(good) - 40, len(good) - 1} { // weights, the gob's end, the sum
		b := append([]byte(nil), good...)
		b[at] ^= 0x10
		os.WriteFile(path, b, 0o644)
		if _, err := Load(path); err == nil {
			t.Errorf("byte %d of %d flipped: loaded", at, len(b))
		}
	}
	os.WriteFile(path, good[:len(good)-trailerLen], 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("trailer cut off: %v", err)
	}
}
