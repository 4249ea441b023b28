// Package export turns a training run into one self-describing .onnx file:
// the network lowered by graphs/, the weights (EMA by default) as
// initializers, and the metadata of the model contract.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/condiff/condiff/graphs"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/train"
)

// Options configure an export.
type Options struct {
	Raw bool // export the raw weights instead of their EMA
}

// Metadata is the condiff.* metadata of a checkpoint's model.
func Metadata(ck *train.Checkpoint) map[string]string {
	c := ck.Config
	names := c.ClassNames
	if names == nil {
		names = []string{}
		for i := 0; i < c.NumClasses; i++ {
			names = append(names, strconv.Itoa(i))
		}
	}
	cn, _ := json.Marshal(names)
	md := map[string]string{
		"condiff.kind":        c.Kind,
		"condiff.num_classes": strconv.Itoa(c.NumClasses),
		"condiff.class_names": string(cn),
		"condiff.image_size":  strconv.Itoa(c.ImageSize),
		"condiff.channels":    strconv.Itoa(c.Channels),
		"condiff.step":        strconv.Itoa(ck.Step),
	}
	cfg, _ := json.Marshal(c)
	md["condiff.config"] = string(cfg)
	tr, _ := json.Marshal(ck.Info)
	md["condiff.train"] = string(tr)
	if c.Kind == "denoiser" {
		md["condiff.variant"] = c.Variant
		md["condiff.schedule"] = ck.Info.Schedule.JSON()
		md["condiff.prediction"] = "epsilon"
		if c.NullClass {
			md["condiff.null_class"] = strconv.Itoa(c.NumClasses)
		}
	}
	return md
}

// Export writes the run's model to out atomically.
func Export(run, out string, o Options) error {
	ck, err := train.Load(run)
	if err != nil {
		if errors.Is(err, train.ErrNoCheckpoint) {
			return fmt.Errorf("export: --run %s: no checkpoint (train first, or point at a run directory)", run)
		}
		return fmt.Errorf("export: --run: %w", err)
	}
	weights := ck.EMA
	if o.Raw {
		weights = ck.Params
	}
	m, err := graphs.Build(ck.Config, weights, ck.Stats, ck.Info.Schedule.T, Metadata(ck))
	if err != nil {
		return fmt.Errorf("export: %s: %w", run, err)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("export: encode: %w", err)
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("export: --out %s is a directory; give a file name such as model.onnx", out)
	}
	if err := fsutil.WriteFileAtomic(out, b); err != nil {
		return fmt.Errorf("export: --out: %w", err)
	}
	return nil
}
