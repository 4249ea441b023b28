// Package contract is the model contract: what an exported condiff model
// holds and what the sampler and the evaluator may rely on. Its tensor
// names, metadata keys, kinds, variants and the null class live here and
// nowhere else; Metadata writes them, Parse reads them back into an Info,
// and Check compares a model's inputs and outputs with what an Info wants.
// It imports the standard library and, for the schedule a denoiser carries,
// condiff's diffusion package (itself standard library only): no
// third-party module, so every binary can import it. TestDependencies holds
// this.
package contract

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/internal/strictjson"
)

// Tensor names of the graph inputs and outputs.
const (
	InputX         = "x"        // float32 [N C H W]: the noisy image (denoiser) or the image (classifier)
	InputT         = "t"        // int64 [N]: timestep 0..T−1
	InputY         = "y"        // int64 [N]: class 0..K−1, or the null class K
	OutputEps      = "eps"      // float32 [N C H W]: the predicted noise
	OutputLogits   = "logits"   // float32 [N K]
	OutputFeatures = "features" // float32 [N D]: the classifier's penultimate layer
)

// Metadata keys (ONNX metadata_props).
const (
	KeyKind       = "condiff.kind"        // Kind; absent means denoiser
	KeyVariant    = "condiff.variant"     // Variant (denoiser)
	KeyNumClasses = "condiff.num_classes" // K
	KeyClassNames = "condiff.class_names" // JSON array of K names
	KeyNullClass  = "condiff.null_class"  // K, only when trained with label dropout
	KeyImageSize  = "condiff.image_size"  // H = W
	KeyChannels   = "condiff.channels"    // C: 1 or 3
	KeySchedule   = "condiff.schedule"    // JSON diffusion.Spec (denoiser)
	KeyPrediction = "condiff.prediction"  // "epsilon" (denoiser)
	KeyTrain      = "condiff.train"       // JSON: how it was trained (informational)
	KeyStep       = "condiff.step"        // optimiser steps behind the weights (informational)
	KeyConfig     = "condiff.config"      // JSON: the architecture that rebuilds the network (models.Config)
	KeyDistilled  = "condiff.distilled"   // JSON Distilled: a few-step student (denoiser)
)

// Distilled says that a denoiser is a distilled student: it is sampled by
// Sampler in exactly Steps steps, and its teacher's guidance (Guidance in
// GuidanceInterval, "" everywhere) is part of what it learned: it takes
// none at sampling. Method is how it learned (DistillProgressive, also "",
// or DistillConsistency).
type Distilled struct {
	Sampler          string  `json:"sampler"`
	Steps            int     `json:"steps"`
	Guidance         float64 `json:"guidance"`
	GuidanceInterval string  `json:"guidance_interval,omitempty"`
	Method           string  `json:"method,omitempty"`
}

// Distillation methods.
const (
	// DistillProgressive: each student step learns two of its teacher's
	// (Salimans & Ho 2022); a student of N steps has a teacher of 2N.
	DistillProgressive = "progressive"
	// DistillConsistency: consistency distillation (Song et al. 2023)
	// with the student's own current weights as its target (ECT, Geng et
	// al. 2024): from any point of the teacher's grid of 2N steps the
	// student predicts the clean image its own prediction one teacher
	// step later makes.
	DistillConsistency = "consistency"
)

// DistillMethods lists the methods.
var DistillMethods = []string{DistillProgressive, DistillConsistency}

// CheckDistillMethod refuses a method that is not one of DistillMethods
// ("" is progressive).
func CheckDistillMethod(m string) error {
	if m != "" && !slices.Contains(DistillMethods, m) {
		return fmt.Errorf("not one of %s", strings.Join(DistillMethods, ", "))
	}
	return nil
}

// Check refuses a Distilled that no sampler could honour on a schedule of
// T steps.
func (d Distilled) Check(T int) error {
	sm, err := diffusion.ParseSampler(d.Sampler)
	if err != nil {
		return err
	}
	if _, err := sm.Timesteps(T, d.Steps); err != nil || d.Steps < 1 {
		return fmt.Errorf("steps %d: not a chain of %s on %d timesteps", d.Steps, d.Sampler, T)
	}
	if !(d.Guidance >= 0) || math.IsInf(d.Guidance, 0) {
		return fmt.Errorf("guidance %v: must be a finite number >= 0", d.Guidance)
	}
	if _, err := diffusion.ParseInterval(d.GuidanceInterval); err != nil {
		return err
	}
	if err := CheckDistillMethod(d.Method); err != nil {
		return fmt.Errorf("method %q: %w", d.Method, err)
	}
	return nil
}

// MethodName is the student's method, "progressive" for the default "".
func (d Distilled) MethodName() string {
	if d.Method == "" {
		return DistillProgressive
	}
	return d.Method
}

// What is the student's guidance in words: "guidance 0.6 in σ ∈ (0.3, 7]".
func (d Distilled) What() string {
	iv, _ := diffusion.ParseInterval(d.GuidanceInterval)
	if iv.Everywhere() {
		return fmt.Sprintf("guidance %g", d.Guidance)
	}
	return fmt.Sprintf("guidance %g in σ ∈ (%g, %g]", d.Guidance, iv.Lo, iv.Hi)
}

// Kind is what a model does.
type Kind string

// Kinds.
const (
	Denoiser   Kind = "denoiser"
	Classifier Kind = "classifier"
)

// Variant is how a denoiser is conditioned on the class.
type Variant string

// Variants.
const (
	Uncond Variant = "uncond" // unconditional DDPM baseline
	CBN    Variant = "cbn"    // M_CBN: every norm scaled and shifted by class embeddings
	AC     Variant = "ac"     // M_AC: label map as an extra input channel (+ auxiliary classifier loss in training)
)

// Variants lists every variant.
var Variants = []Variant{Uncond, CBN, AC}

// Prediction targets: what a denoiser's "eps" output holds. Samplers take
// ε; a v-prediction model's output (v = α_t·ε − σ_t·x₀, Salimans & Ho
// 2022) is turned into ε = σ_t·x_t + α_t·v by its session. Distilled
// students predict v: at the first step of a few-step chain (α_t ≈ 0.006
// at t = 999 of the linear schedule) an ε error moves x̂₀ by σ_t/α_t ≈ 160
// times itself, a v error by σ_t ≈ 1.
const (
	PredictionEpsilon = "epsilon"
	PredictionV       = "v"
)

// NullLabel is the label of the learned null class ("no label") of a model
// with numClasses classes trained with label dropout: the row after the last
// class. Guided sampling feeds it as y; training substitutes it for dropped
// labels.
func NullLabel(numClasses int) int { return numClasses }

// Limits on sizes read from metadata, checked before anything is sized by
// them.
const (
	MaxClasses   = 100000
	MaxImageSize = 4096
)

// Info is what a model's metadata says about it.
type Info struct {
	Kind       Kind
	Variant    Variant // denoiser only
	NumClasses int
	ClassNames []string // len NumClasses (names are indices when absent)
	HasNull    bool     // trained with label dropout: NullLabel(NumClasses) is a valid y
	ImageSize  int
	Channels   int
	Schedule   diffusion.Spec // denoiser only
	Prediction string         // denoiser only
	Step       int            // 0 when unknown
	Train      json.RawMessage
	Config     json.RawMessage // the architecture, when the producer wrote it
	Distilled  *Distilled      // a distilled student's sampling (denoiser); nil: any sampler
}

// Conditional reports whether the model has a label input.
func (in Info) Conditional() bool { return in.Kind == Denoiser && in.Variant != Uncond }

// CheckGuide refuses a guide (autoguidance: the second row's denoiser)
// that does not model the same thing as the main denoiser: both must be
// denoisers of the same schedule, prediction target, image shape and
// classes, the guide conditional when the main one is. The error names
// the first difference.
func (g Info) CheckGuide(main Info) error {
	differ := func(what string, gv, mv any) error {
		return fmt.Errorf("the guide's %s (%v) is not the model's (%v)", what, gv, mv)
	}
	switch {
	case g.Kind != Denoiser:
		return fmt.Errorf("the guide is a %s, not a denoiser", g.Kind)
	case g.Schedule != main.Schedule:
		return differ("schedule", g.Schedule.JSON(), main.Schedule.JSON())
	case g.Prediction != main.Prediction:
		return differ("prediction target", g.Prediction, main.Prediction)
	case g.ImageSize != main.ImageSize || g.Channels != main.Channels:
		return differ("image shape", fmt.Sprintf("%d×%d×%d", g.Channels, g.ImageSize, g.ImageSize), fmt.Sprintf("%d×%d×%d", main.Channels, main.ImageSize, main.ImageSize))
	case g.Conditional() != main.Conditional():
		return differ("conditioning", g.Variant, main.Variant)
	case main.Conditional() && g.NumClasses != main.NumClasses:
		return differ("number of classes", g.NumClasses, main.NumClasses)
	}
	for i := 0; main.Conditional() && i < main.NumClasses; i++ {
		if g.ClassName(i) != main.ClassName(i) {
			return differ(fmt.Sprintf("class %d", i), g.ClassName(i), main.ClassName(i))
		}
	}
	return nil
}

// Null returns the null class label; valid only when HasNull.
func (in Info) Null() int { return NullLabel(in.NumClasses) }

// ClassName returns the name of class i.
func (in Info) ClassName(i int) string {
	if i >= 0 && i < len(in.ClassNames) {
		return in.ClassNames[i]
	}
	return strconv.Itoa(i)
}

// ClassIndex resolves a class by name or index.
func (in Info) ClassIndex(s string) (int, error) {
	for i := 0; i < in.NumClasses; i++ {
		if in.ClassName(i) == s {
			return i, nil
		}
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < in.NumClasses {
		return i, nil
	}
	names := make([]string, min(in.NumClasses, 50))
	for i := range names {
		names[i] = in.ClassName(i)
	}
	more := ""
	if in.NumClasses > len(names) {
		more = ", …"
	}
	return 0, fmt.Errorf("class %q does not exist; valid classes: %s%s (or an index 0..%d)", s, strings.Join(names, ", "), more, in.NumClasses-1)
}

// Metadata writes the Info as metadata_props. Class names default to the
// indices; keys that do not apply to the kind are left out.
func (in Info) Metadata() map[string]string {
	names := in.ClassNames
	if names == nil {
		names = make([]string, in.NumClasses)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
	}
	cn, _ := json.Marshal(names)
	kind := in.Kind
	if kind == "" {
		kind = Denoiser
	}
	md := map[string]string{
		KeyKind:       string(kind),
		KeyNumClasses: strconv.Itoa(in.NumClasses),
		KeyClassNames: string(cn),
		KeyImageSize:  strconv.Itoa(in.ImageSize),
		KeyChannels:   strconv.Itoa(in.Channels),
	}
	if in.Step > 0 {
		md[KeyStep] = strconv.Itoa(in.Step)
	}
	if len(in.Train) > 0 {
		md[KeyTrain] = string(in.Train)
	}
	if len(in.Config) > 0 {
		md[KeyConfig] = string(in.Config)
	}
	if kind == Denoiser {
		md[KeyVariant] = string(in.Variant)
		md[KeySchedule] = in.Schedule.JSON()
		md[KeyPrediction] = cmp.Or(in.Prediction, PredictionEpsilon)
		if in.HasNull {
			md[KeyNullClass] = strconv.Itoa(in.Null())
		}
		if in.Distilled != nil {
			b, _ := json.Marshal(in.Distilled)
			md[KeyDistilled] = string(b)
		}
	}
	return md
}

// Parse reads the condiff.* metadata of the model in file (named in errors).
func Parse(file string, md map[string]string) (Info, error) {
	var in Info
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("contract: %s: metadata %q: %s", file, key, fmt.Sprintf(format, a...))
	}
	get := func(key string) (string, error) {
		v, ok := md[key]
		if !ok {
			return "", bad(key, "missing (see the model contract in the README)")
		}
		return v, nil
	}
	atoi := func(key string, lo, hi int) (int, error) {
		s, err := get(key)
		if err != nil {
			return 0, err
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < lo || v > hi {
			return 0, bad(key, "%q is not an integer in %d..%d", s, lo, hi)
		}
		return v, nil
	}
	var err error
	in.Kind = Kind(md[KeyKind])
	if in.Kind == "" {
		in.Kind = Denoiser
	}
	if in.Kind != Denoiser && in.Kind != Classifier {
		return in, bad(KeyKind, "%q is not denoiser or classifier", in.Kind)
	}
	if in.NumClasses, err = atoi(KeyNumClasses, 0, MaxClasses); err != nil {
		return in, err
	}
	if in.ImageSize, err = atoi(KeyImageSize, 1, MaxImageSize); err != nil {
		return in, err
	}
	if in.Channels, err = atoi(KeyChannels, 1, 3); err != nil {
		return in, err
	}
	if in.Channels == 2 {
		return in, bad(KeyChannels, "2 is not 1 (grayscale) or 3 (RGB)")
	}
	if s, ok := md[KeyClassNames]; ok {
		if err := json.Unmarshal([]byte(s), &in.ClassNames); err != nil {
			return in, bad(KeyClassNames, "not a JSON array of strings: %v", err)
		}
		if len(in.ClassNames) != in.NumClasses {
			return in, bad(KeyClassNames, "%d names for %d classes", len(in.ClassNames), in.NumClasses)
		}
		seen := map[string]int{}
		for i, n := range in.ClassNames {
			if err := checkClassName(n); err != nil {
				return in, bad(KeyClassNames, "class %d: %v", i, err)
			}
			if j, dup := seen[n]; dup {
				return in, bad(KeyClassNames, "classes %d and %d are both named %q", j, i, n)
			}
			seen[n] = i
		}
	}
	if s, ok := md[KeyStep]; ok {
		if in.Step, err = strconv.Atoi(s); err != nil || in.Step < 0 {
			return in, bad(KeyStep, "%q is not a non-negative integer", s)
		}
	}
	in.Train = json.RawMessage(md[KeyTrain])
	in.Config = json.RawMessage(md[KeyConfig])
	if in.Kind == Classifier {
		if in.NumClasses < 2 {
			return in, bad(KeyNumClasses, "a classifier needs at least 2 classes, not %d", in.NumClasses)
		}
		return in, nil
	}
	v, err := get(KeyVariant)
	if err != nil {
		return in, err
	}
	in.Variant = Variant(v)
	switch in.Variant {
	case Uncond:
	case CBN, AC:
		if in.NumClasses < 1 {
			return in, bad(KeyNumClasses, "a conditional model needs classes, not %d", in.NumClasses)
		}
	default:
		return in, bad(KeyVariant, "%q is not uncond, cbn or ac", v)
	}
	if s, ok := md[KeyNullClass]; ok {
		v, err := strconv.Atoi(s)
		if err != nil || v != NullLabel(in.NumClasses) {
			return in, bad(KeyNullClass, "%q must equal num_classes (%d)", s, in.NumClasses)
		}
		in.HasNull = true
	}
	s, err := get(KeySchedule)
	if err != nil {
		return in, err
	}
	if in.Schedule, err = diffusion.ParseSpec([]byte(s)); err != nil {
		return in, bad(KeySchedule, "%v", err)
	}
	if in.Prediction, err = get(KeyPrediction); err != nil {
		return in, err
	}
	if in.Prediction != PredictionEpsilon && in.Prediction != PredictionV {
		return in, bad(KeyPrediction, "%q is not supported (want %s or %s)", in.Prediction, PredictionEpsilon, PredictionV)
	}
	if s, ok := md[KeyDistilled]; ok {
		var d Distilled
		if err := strictjson.Decode([]byte(s), &d, true); err != nil {
			return in, bad(KeyDistilled, "not a JSON object of sampler, steps, guidance and guidance_interval: %v", err)
		}
		if err := d.Check(in.Schedule.T); err != nil {
			return in, bad(KeyDistilled, "%v", err)
		}
		in.Distilled = &d
	}
	return in, nil
}

// MaxClassName bounds a class name's length in bytes.
const MaxClassName = 256

// checkClassName refuses what a name cannot be shown as: empty, over
// MaxClassName bytes, invalid UTF-8, or holding control characters (a
// newline would split log lines and tables, an escape sequence would
// drive the terminal). Markup is allowed and shown as text wherever
// names appear.
func checkClassName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("empty name")
	case len(n) > MaxClassName:
		return fmt.Errorf("name of %d bytes, over %d", len(n), MaxClassName)
	case !utf8.ValidString(n):
		return fmt.Errorf("name %q is not UTF-8", n)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("name %q holds the control character %U", n, r)
		}
	}
	return nil
}
