package contract

import (
	"maps"
	"strings"
	"testing"

	"github.com/condiff/condiff/diffusion"
)

func denoiserInfo() Info {
	sp, _ := diffusion.Default("linear", 1000)
	return Info{Kind: Denoiser, Variant: CBN, NumClasses: 3, ClassNames: []string{"a", "b", "c"}, HasNull: true,
		ImageSize: 16, Channels: 1, Schedule: sp, Prediction: PredictionEpsilon, Step: 7,
		Train: []byte(`{"dataset":"synthetic"}`), Config: []byte(`{"kind":"denoiser"}`)}
}

// TestRoundTrip: Parse reads back what Metadata writes, for both kinds.
func TestRoundTrip(t *testing.T) {
	in := denoiserInfo()
	md := in.Metadata()
	if md[KeyNullClass] != "3" || md[KeyVariant] != "cbn" || md[KeyPrediction] != "epsilon" {
		t.Fatalf("metadata %v", md)
	}
	back, err := Parse("m.onnx", md)
	if err != nil {
		t.Fatal(err)
	}
	if back.Kind != in.Kind || back.Variant != in.Variant || back.NumClasses != 3 || !back.HasNull || back.Null() != 3 ||
		back.ImageSize != 16 || back.Channels != 1 || back.Schedule != in.Schedule || back.Step != 7 ||
		string(back.Train) != string(in.Train) || string(back.Config) != string(in.Config) || back.ClassName(1) != "b" {
		t.Fatalf("round trip: %+v", back)
	}
	clf := Info{Kind: Classifier, NumClasses: 2, ImageSize: 8, Channels: 3}
	cmd := clf.Metadata()
	if _, ok := cmd[KeySchedule]; ok {
		t.Fatal("a classifier's metadata has a schedule")
	}
	if cmd[KeyClassNames] != `["0","1"]` {
		t.Fatalf("default class names %s", cmd[KeyClassNames])
	}
	if back, err := Parse("c.onnx", cmd); err != nil || back.Kind != Classifier || back.Conditional() {
		t.Fatalf("classifier: %+v %v", back, err)
	}
	// A distilled student's sampling travels with it.
	in.Distilled = &Distilled{Sampler: "ddim-trailing", Steps: 4, Guidance: 0.6, GuidanceInterval: "0.3,7", Method: DistillConsistency}
	back, err = Parse("s.onnx", in.Metadata())
	if err != nil || back.Distilled == nil || *back.Distilled != *in.Distilled {
		t.Fatalf("distilled: %+v %v", back.Distilled, err)
	}
	if w := back.Distilled.What(); w != "guidance 0.6 in σ ∈ (0.3, 7]" {
		t.Errorf("What: %q", w)
	}
}

// TestParseErrors: each bad key is refused with the file and the key named.
func TestParseErrors(t *testing.T) {
	good := denoiserInfo().Metadata()
	cases := []struct{ key, value, want string }{
		{KeyKind, "gan", `metadata "condiff.kind": "gan" is not denoiser or classifier`},
		{KeyVariant, "film", `"film" is not uncond, cbn or ac`},
		{KeyNumClasses, "1000000000000", `"condiff.num_classes": "1000000000000" is not an integer in 0..100000`},
		{KeyImageSize, "100000", `"condiff.image_size": "100000" is not an integer in 1..4096`},
		{KeyChannels, "2", `"condiff.channels": 2 is not 1 (grayscale) or 3 (RGB)`},
		{KeyChannels, "4", `"condiff.channels": "4" is not an integer in 1..3`},
		{KeyNullClass, "0", `"condiff.null_class": "0" must equal num_classes (3)`},
		{KeyClassNames, `["a"]`, `1 names for 3 classes`},
		{KeyClassNames, `["a","b\nc","d"]`, `class 1: name "b\nc" holds the control character U+000A`},
		{KeyClassNames, `["a","\u001b[31mred","d"]`, `control character U+001B`},
		{KeyClassNames, `["a","","d"]`, `class 1: empty name`},
		{KeyClassNames, `["a","b","a"]`, `classes 0 and 2 are both named "a"`},
		{KeyClassNames, `["a","b","` + strings.Repeat("x", 257) + `"]`, `name of 257 bytes, over 256`},
		{KeySchedule, `{"kind":"linear","T":0}`, `"condiff.schedule"`},
		{KeyPrediction, "x0", `"x0" is not supported (want epsilon or v)`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":4,"guidance":0.6}x`, `"condiff.distilled": not a JSON object`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":4,"guidance":0.6,"eta":1}`, `unknown field "eta"`},
		{KeyDistilled, `{"sampler":"euler","steps":4,"guidance":0}`, `"condiff.distilled": diffusion: Sampler "euler"`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":0,"guidance":0}`, `steps 0: not a chain of ddim-trailing on 1000 timesteps`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":1001,"guidance":0}`, `steps 1001: not a chain`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":4,"guidance":-1}`, `guidance -1: must be a finite number >= 0`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":4,"guidance":1,"guidance_interval":"7,3"}`, `must be 0 <= LO < HI`},
		{KeyDistilled, `{"sampler":"ddim-trailing","steps":4,"guidance":1,"method":"rectified"}`, `method "rectified": not one of progressive, consistency`},
		{KeyPrediction, "", ""},
	}
	for _, c := range cases {
		md := maps.Clone(good)
		md[c.key] = c.value
		if c.want == "" {
			delete(md, c.key)
			c.want = `metadata "condiff.prediction": missing`
		}
		_, err := Parse("m.onnx", md)
		if err == nil || !strings.Contains(err.Error(), "contract: m.onnx: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: %v; want %q", c.key, c.value, err, c.want)
		}
	}
}

func TestCheckIO(t *testing.T) {
	in := Info{Kind: Denoiser, Variant: CBN, NumClasses: 3, ImageSize: 8, Channels: 1}
	got := []Tensor{{"x", Float32, []int64{-1, 1, 8, 8}}, {"t", Int64, []int64{-1}}, {"y", Float32, []int64{-1}}}
	out := []Tensor{{"eps", Float32, []int64{-1, 1, 8, 8}}}
	err := Check("m.onnx", in, got, out)
	if err == nil || err.Error() != `contract: m.onnx: input "y": want int64, got float32` {
		t.Fatalf("dtype: %v", err)
	}
	got[2].Type = Int64
	got[0].Dims = []int64{-1, 3, 8, 8}
	if err := Check("m.onnx", in, got, out); err == nil || !strings.Contains(err.Error(), `want shape [N 1 8 8], got [N 3 8 8]`) {
		t.Fatalf("shape: %v", err)
	}
	got[0].Dims = []int64{-1, 1, 8, 8}
	if err := Check("m.onnx", in, got[:2], out); err == nil || !strings.Contains(err.Error(), `input "y" is missing`) {
		t.Fatalf("missing: %v", err)
	}
	if err := Check("m.onnx", in, got, out); err != nil {
		t.Fatalf("a conforming model: %v", err)
	}
	if err := Check("m.onnx", in, append(got, Tensor{"mask", Float32, nil}), out); err == nil || !strings.Contains(err.Error(), `input "mask" is not in the contract`) {
		t.Fatalf("extra input: %v", err)
	}
	unc := in
	unc.Variant = Uncond
	if err := Check("m.onnx", unc, got, out); err == nil || !strings.Contains(err.Error(), `input "y" is not in the contract`) {
		t.Fatalf("label input on an unconditional model: %v", err)
	}
	clf := Info{Kind: Classifier, NumClasses: 3, ImageSize: 8, Channels: 1}
	if err := Check("c.onnx", clf, got[:1], []Tensor{{"logits", Float32, []int64{-1, 3}}, {"features", Float32, []int64{-1, 64}}}); err != nil {
		t.Fatalf("classifier: %v", err)
	}
}
