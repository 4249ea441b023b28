package diffusion

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/condiff/condiff/internal/field"
)

// Sampler is a reverse-process update rule. Each lives in a file of its own
// and registers itself; nothing else in condiff names one. A sampler is
// stateless: what one image's chain carries between denoiser calls lives in
// the Row the sampler starts for it, so rows of one denoiser call can be at
// different steps of different samplers.
type Sampler interface {
	// Name is what flags, manifests and reports call it: "ddim".
	Name() string
	// Doc is one line for help texts.
	Doc() string
	// Timesteps returns the model timestep of each denoiser call of a chain
	// of steps model evaluations (0: the sampler's default) on a schedule of
	// T steps, in call order.
	Timesteps(T, steps int) ([]int, error)
	// TakesEta says whether the stochasticity η means anything to it; a
	// nonzero η for a sampler that ignores it is refused.
	TakesEta() bool
	// NewRow starts one image's chain.
	NewRow(c Chain) Row
}

// Chain is what every row of one request shares.
type Chain struct {
	Schedule  *Schedule
	Timesteps []int   // the sampler's Timesteps
	Eta       float64 // stochasticity, for samplers that take it
	Values    int     // values per image: C·H·W
}

// Row is one image's chain between denoiser calls.
type Row interface {
	// Step advances x after denoiser call i of the chain, which saw x at
	// timestep Timesteps[i] and predicted the (guided) noise eps, whose clean
	// image (clipped to [-1, 1]) is x0. x becomes the input of call i+1, or
	// the finished image after the last call. z is the image's own noise.
	Step(i int, x, eps, x0 []float32, z Noise)
}

// Noise is a stream of standard normal numbers (*rand.Rand is one).
type Noise interface{ NormFloat64() float64 }

var registry []Sampler

// Register adds a sampler to the registry; each sampler's file calls it
// from init. A second sampler of one name is a programming error.
func Register(s Sampler) {
	if slices.ContainsFunc(registry, func(o Sampler) bool { return o.Name() == s.Name() }) {
		panic("diffusion: sampler " + s.Name() + " registered twice")
	}
	registry = append(registry, s)
}

// Samplers lists the registered samplers, by name.
func Samplers() []Sampler {
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b Sampler) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// SamplerNames lists the registered samplers' names for a sentence:
// "ddim, ddpm or dpm++2m".
func SamplerNames() string {
	var names []string
	for _, s := range Samplers() {
		names = append(names, s.Name())
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// SamplerHelp is one line per registered sampler, "name: doc", for help
// texts.
func SamplerHelp() string {
	var b strings.Builder
	for i, s := range Samplers() {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", s.Name(), s.Doc())
	}
	return b.String()
}

// ParseSampler finds a registered sampler by name.
func ParseSampler(name string) (Sampler, error) {
	for _, s := range registry {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, field.Errorf("diffusion", "Sampler", name, "not %s", SamplerNames())
}

// DefaultGuidance is the classifier-free guidance weight of a model trained
// with label dropout when none is asked for: at 1 the shipped models'
// samples follow their class 6–13 points more often than at 0 (MNIST
// 99.8% vs 93.5%, Fashion-MNIST 98.0% vs 84.6%, 100 per class), with
// higher precision, fewer stray blobs and lower recall; 0.5 keeps more
// diversity (docs/quality).
const DefaultGuidance = 1.0

// DefaultSteps is the chain length of samplers that take any number of
// steps when none is asked for (capped at T): on the shipped MNIST model 20
// DDIM steps are as good as 50 (within the intervals) at 2.4× the speed; on
// Fashion-MNIST 50 are still closer to the data (docs/frontier).
const DefaultSteps = 20

// UniformTimesteps is the respacing of samplers that take any number of
// steps: steps of T timesteps (0: DefaultSteps), evenly spaced from T−1
// down to 0, t_i = round((T−1)·(steps−1−i)/(steps−1)).
func UniformTimesteps(T, steps int) ([]int, error) {
	steps, err := chainLength(T, steps)
	if err != nil {
		return nil, err
	}
	ts := make([]int, steps)
	for i := range ts {
		if steps == 1 {
			ts[i] = T - 1
			continue
		}
		ts[i] = int(math.Round(float64(T-1) * float64(steps-1-i) / float64(steps-1)))
	}
	return ts, nil
}

// chainLength is steps (0: DefaultSteps, at most T) checked against a
// schedule of T steps.
func chainLength(T, steps int) (int, error) {
	if steps == 0 {
		steps = min(DefaultSteps, T)
	}
	if steps < 1 || steps > T {
		return 0, field.Errorf("diffusion", "Steps", steps, "out of 1..%d (the model's T)", T)
	}
	return steps, nil
}

// next is the timestep after call i of ts: -1 (the clean image) after the
// last.
func next(ts []int, i int) int {
	if i+1 < len(ts) {
		return ts[i+1]
	}
	return -1
}
