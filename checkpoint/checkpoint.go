// Package checkpoint holds the formats of a training run directory: the
// checkpoint (config, weights, their EMA, running statistics, optimiser
// moments, RNG state) and the JSONL log. It needs neither gorgonia nor cgo,
// so export and eval read runs without the training stack.
package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/condiff/condiff/contract"
	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/fsutil"
	"github.com/condiff/condiff/models"
)

// MaxBytes bounds a checkpoint file (a regular file; anything else is
// refused before it is read).
const MaxBytes = 8 << 30

// File is the name of the checkpoint inside a run directory.
const File = "checkpoint.gob"

// checkpointMagic versions the checkpoint format: version 2 is version 1
// (a gob-encoded Checkpoint) followed by a SHA-256 trailer of the gob bytes.
const (
	checkpointMagic   = "condiff-checkpoint-2"
	checkpointMagicV1 = "condiff-checkpoint-1" // no trailer; still read
	sumMagic          = "CDSUM1"
	trailerLen        = len(sumMagic) + sha256.Size
)

// ACMode is how an M_AC run trains its auxiliary classifier.
type ACMode string

// AC modes.
const (
	ACJoint  ACMode = "joint"  // trained with the denoiser (the two co-adapt)
	ACFrozen ACMode = "frozen" // a pretrained classifier, kept fixed
)

// TrainInfo is how a run was trained; it travels into exported models.
type TrainInfo struct {
	Dataset string   `json:"dataset"`
	Classes []string `json:"classes,omitempty"` // --classes subset, if any
	Steps   int      `json:"steps"`
	Batch   int      `json:"batch"`
	LR      float64  `json:"lr"`
	Seed    uint64   `json:"seed"`
	// The data options a resumed run must load the same set with.
	PerClass int             `json:"synthetic_per_class,omitempty"`
	DataDir  string          `json:"data_dir,omitempty"`
	SkipBad  bool            `json:"skip_bad,omitempty"`
	Norm     models.NormKind `json:"norm"`
	CFGDrop  float64         `json:"cfg_drop"`
	// MinSNRGamma weights each example's loss by min(SNR_t, γ)/SNR_t
	// (Min-SNR-γ, Hang et al. 2023; 0: unweighted).
	MinSNRGamma float64        `json:"min_snr_gamma,omitempty"`
	ACWeight    float64        `json:"ac_weight,omitempty"`
	ACMode      ACMode         `json:"ac_mode,omitempty"`
	Schedule    diffusion.Spec `json:"-"`
	EMADecay    float64        `json:"ema_decay"`
	GradClip    float64        `json:"grad_clip"`
	// The learning rate's course: a linear warm-up over LRWarmup steps,
	// then constant ("" or "constant") or a cosine decay to 0 at Steps.
	LRSchedule string         `json:"lr_schedule,omitempty"`
	LRWarmup   int            `json:"lr_warmup,omitempty"`
	ClfConfig  *models.Config `json:"-"` // the M_AC classifier's architecture
	// Init is the model file a new run started from (train --init; "": a
	// fresh initialisation): its architecture and schedule replace the
	// run's, its weights are the first weights and their EMA, and the data
	// must have its classes and image shape (export.Import).
	Init string `json:"init,omitempty"`
	// Distill makes the run progressive distillation (Salimans & Ho 2022):
	// the network, started from Init (the teacher), learns to do in each
	// step of Distill.Sampler's chain of Distill.Steps what Init does in
	// two steps of the chain of twice as many, guided by Distill.Guidance
	// in Distill.GuidanceInterval. The student predicts v, not ε
	// (contract.PredictionV). nil: ordinary training.
	Distill *contract.Distilled `json:"distill,omitempty"`
}

// RunConfig is a run described as JSON: its network's config, its noise
// schedule (a denoiser's) and its recipe, in the same fields as the
// checkpoint and the exported metadata hold them. `condiff train
// --print-config` writes it (train.Plan).
type RunConfig struct {
	Config   models.Config   `json:"config"`
	Schedule *diffusion.Spec `json:"schedule,omitempty"`
	Train    TrainInfo       `json:"train"`
}

// Checkpoint is everything a run needs to continue, and everything export
// needs to build a model: the config that built it travels with the weights.
type Checkpoint struct {
	Magic    string
	Config   models.Config
	Info     TrainInfo
	Step     int
	Params   map[string]models.Array // raw weights ("clf."-prefixed: the M_AC classifier)
	EMA      map[string]models.Array // exponential moving average of Params
	Stats    map[string]models.Array // batch-norm running statistics
	AdamM    map[string]models.Array
	AdamV    map[string]models.Array
	RNG      []byte  // the training RNG's state
	ImgPerS  float64 // throughput of the last segment, informational
	WallTime float64 // seconds spent training, summed over resumes
}

// Finite reports whether every weight and EMA weight is finite, naming the
// first parameter that is not.
func (c *Checkpoint) Finite() (string, bool) {
	for _, set := range []map[string]models.Array{c.Params, c.EMA} {
		for name, a := range set {
			for _, v := range a.Data {
				if v-v != 0 {
					return name, false
				}
			}
		}
	}
	return "", true
}

// ErrNoCheckpoint is returned when a run directory holds no checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Save writes the checkpoint atomically: a temporary file in the same
// directory, synced, then renamed over path.
func (c *Checkpoint) Save(path string) error {
	c.Magic = checkpointMagic
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", path, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.WriteString(sumMagic)
	buf.Write(sum[:])
	if err := fsutil.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("checkpoint: save: %w", err)
	}
	return nil
}

// Load reads a checkpoint from a file or from a run directory.
func Load(path string) (*Checkpoint, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, File)
	}
	b, err := fsutil.ReadSmallFile(path, MaxBytes)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("checkpoint: %s: %w", path, ErrNoCheckpoint)
		}
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	body := b
	hasSum := len(b) >= trailerLen && string(b[len(b)-trailerLen:len(b)-sha256.Size]) == sumMagic
	if hasSum {
		body = b[:len(b)-trailerLen]
	}
	var c Checkpoint
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&c); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: not a condiff checkpoint: %w", path, err)
	}
	switch c.Magic {
	case checkpointMagic:
		sum := sha256.Sum256(body)
		if !hasSum || !bytes.Equal(sum[:], b[len(b)-sha256.Size:]) {
			return nil, fmt.Errorf("checkpoint: %s: checksum mismatch: the file is damaged (a changed or missing byte)", path)
		}
	case checkpointMagicV1:
		if hasSum { // format 1 has no trailer: this is a format-2 file whose tag was changed
			return nil, fmt.Errorf("checkpoint: %s: format %q with a format-2 checksum trailer: the file was altered", path, c.Magic)
		}
	default:
		return nil, fmt.Errorf("checkpoint: %s: format %q, want %q", path, c.Magic, checkpointMagic)
	}
	if err := c.Config.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return &c, nil
}

// check verifies that the weights match the config that claims them.
func (c *Checkpoint) check() error {
	s, _ := models.Trace(c.Config, 1)
	for _, p := range s.Params {
		for _, set := range []struct {
			what string
			m    map[string]models.Array
		}{{"params", c.Params}, {"ema", c.EMA}} {
			a, ok := set.m[p.Name]
			if !ok {
				return fmt.Errorf("%s: parameter %q missing", set.what, p.Name)
			}
			if fmt.Sprint(a.Shape) != fmt.Sprint(p.Shape) || len(a.Data) != models.Numel(p.Shape) {
				return fmt.Errorf("%s: parameter %q has shape %v, config wants %v", set.what, p.Name, a.Shape, p.Shape)
			}
		}
	}
	if c.Config.Norm == models.BatchNorm {
		for _, n := range s.Norms {
			for _, suf := range []string{".running_mean", ".running_var"} {
				if a, ok := c.Stats[n.Name+suf]; !ok || len(a.Data) != n.Channels {
					return fmt.Errorf("stats: %q missing or not %d channels", n.Name+suf, n.Channels)
				}
			}
		}
	}
	return nil
}
