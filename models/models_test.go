package models

import (
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
)

// TestParamNames pins the parameter names of a small U-Net of each variant:
// they are the contract between checkpoints, gorgonia and ONNX initializers.
func TestParamNames(t *testing.T) {
	cfg := DefaultDenoiser()
	cfg.ChannelMult, cfg.NumClasses = []int{1, 2}, 3
	want := map[contract.Variant]string{
		contract.Uncond: "time.0.weight time.0.bias time.1.weight time.1.bias conv_in.weight conv_in.bias " +
			"down.0.res.0.norm1.gamma down.0.res.0.norm1.beta down.0.res.0.conv1.weight down.0.res.0.conv1.bias down.0.res.0.temb.weight down.0.res.0.temb.bias down.0.res.0.norm2.gamma down.0.res.0.norm2.beta down.0.res.0.conv2.weight down.0.res.0.conv2.bias " +
			"down.0.downsample.weight down.0.downsample.bias " +
			"down.1.res.0.norm1.gamma down.1.res.0.norm1.beta down.1.res.0.conv1.weight down.1.res.0.conv1.bias down.1.res.0.temb.weight down.1.res.0.temb.bias down.1.res.0.norm2.gamma down.1.res.0.norm2.beta down.1.res.0.conv2.weight down.1.res.0.conv2.bias down.1.res.0.skip.weight down.1.res.0.skip.bias " +
			"mid.res.0.norm1.gamma mid.res.0.norm1.beta mid.res.0.conv1.weight mid.res.0.conv1.bias mid.res.0.temb.weight mid.res.0.temb.bias mid.res.0.norm2.gamma mid.res.0.norm2.beta mid.res.0.conv2.weight mid.res.0.conv2.bias " +
			"mid.res.1.norm1.gamma mid.res.1.norm1.beta mid.res.1.conv1.weight mid.res.1.conv1.bias mid.res.1.temb.weight mid.res.1.temb.bias mid.res.1.norm2.gamma mid.res.1.norm2.beta mid.res.1.conv2.weight mid.res.1.conv2.bias",
	}
	s, out := Trace(cfg, 2)
	if got := out; got[0] != 2 || got[1] != 1 || got[2] != 32 || got[3] != 32 {
		t.Fatalf("output shape %v", got)
	}
	var names []string
	uncond := cfg
	uncond.Variant = contract.Uncond
	s, _ = Trace(uncond, 2)
	names = names[:0]
	for _, p := range s.Params {
		names = append(names, p.Name)
	}
	joined := strings.Join(names, " ")
	if !strings.HasPrefix(joined, want[contract.Uncond]) {
		t.Fatalf("uncond names changed:\n%s", joined)
	}
	if len(names) != 104 || names[len(names)-2] != "conv_out.weight" || names[len(names)-3] != "out.norm.beta" {
		t.Fatalf("uncond: %d parameters, tail %v", len(names), names[len(names)-4:])
	}
	// cbn: the same names, norm affines become class tables [K C].
	c := cfg
	c.Variant, c.NullClass = contract.CBN, true
	s, _ = Trace(c, 2)
	for _, p := range s.Params {
		if strings.HasSuffix(p.Name, ".gamma") && (len(p.Shape) != 2 || p.Shape[0] != 4) {
			t.Fatalf("cbn %s has shape %v, want [4 C]", p.Name, p.Shape)
		}
	}
	// ac: one label map table [K H·W] first among the non-time weights.
	c.Variant = contract.AC
	s, _ = Trace(c, 2)
	if s.Params[4].Name != "label_map" || s.Params[4].Shape[1] != 32*32 || s.Params[5].Shape[1] != 2 {
		t.Fatalf("ac: %v %v; conv_in %v", s.Params[4].Name, s.Params[4].Shape, s.Params[5].Shape)
	}
}

func TestConfigErrors(t *testing.T) {
	c := DefaultDenoiser()
	c.NumClasses = 2
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.ImageSize = 18 }, "image_size: 18 cannot be halved"},
		{func(c *Config) { c.Variant = "x" }, "variant"},
		{func(c *Config) { c.Norm = GroupNorm; c.Groups = 5 }, "groups"},
		{func(c *Config) { c.Channels = 2 }, "channels"},
		{func(c *Config) { c.NumClasses = 1 }, "num_classes"},
		{func(c *Config) { c.AttnRes = []int{12} }, "attention_resolutions: [12]: each entry must be one of the U-Net's resolutions [32 16 8]"},
		{func(c *Config) { c.AttnRes = []int{16, 16} }, "attention_resolutions: [16 16]"},
		{func(c *Config) { *c = DefaultClassifier(); c.NumClasses = 2; c.AttnRes = []int{16} }, "the classifier has no attention blocks"},
	} {
		cc := c
		tc.edit(&cc)
		if err := cc.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v; want %q", err, tc.want)
		}
	}
	if _, err := ParseConfig([]byte(`{"kind":"denoiser","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown key: %v", err)
	}
	ok := c
	ok.AttnRes = []int{16, 8}
	if err := ok.Validate(); err != nil {
		t.Errorf("attention at 16 and 8: %v", err)
	}
}
