package models

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/condiff/condiff/internal/strictjson"

	"github.com/condiff/condiff/contract"
)

// Config is everything that builds a network. It travels inside checkpoints and
// exported models, so a model can always be rebuilt from its artifact.
type Config struct {
	Kind         contract.Kind    `json:"kind"`
	Variant      contract.Variant `json:"variant"` // denoiser only
	Norm         NormKind         `json:"norm"`    // batch or group
	Groups       int              `json:"groups"`  // groups for group norm
	Channels     int              `json:"channels"`
	ImageSize    int              `json:"image_size"`
	BaseChannels int              `json:"base_channels"`
	ChannelMult  []int            `json:"channel_mult"`
	NumResBlocks int              `json:"num_res_blocks"`
	NumClasses   int              `json:"num_classes"`
	ClassNames   []string         `json:"class_names"`
	NullClass    bool             `json:"null_class"` // a learned "no label" row at contract.NullLabel(NumClasses)
	// AttnRes lists the resolutions (image sizes, e.g. 16) whose residual
	// blocks are followed by a self-attention block, as in the DDPM U-Net;
	// with any, the middle gets one between its two residual blocks too.
	// Empty: no attention.
	AttnRes []int `json:"attention_resolutions,omitempty"`
}

// DefaultDenoiser is the U-Net used when no architecture flag is given.
func DefaultDenoiser() Config {
	return Config{Kind: contract.Denoiser, Variant: contract.CBN, Norm: BatchNorm, Groups: 8, Channels: 1, ImageSize: 32,
		BaseChannels: 32, ChannelMult: []int{1, 2, 2}, NumResBlocks: 1}
}

// DefaultClassifier is the small convnet used for M_AC and evaluation.
func DefaultClassifier() Config {
	return Config{Kind: contract.Classifier, Norm: GroupNorm, Groups: 8, Channels: 1, ImageSize: 32, BaseChannels: 32}
}

// LabelRows is the number of rows of a label embedding table: the classes
// plus the null class when the model was trained with label dropout.
func (c Config) LabelRows() int {
	if c.NullClass {
		return c.NumClasses + 1
	}
	return c.NumClasses
}

// Conditional reports whether the network takes a label input.
func (c Config) Conditional() bool {
	return c.Kind == contract.Denoiser && c.Variant != contract.Uncond
}

// Validate checks the config and says which field is wrong.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, a...))
	}
	switch c.Kind {
	case contract.Denoiser:
		switch c.Variant {
		case contract.Uncond, contract.CBN, contract.AC:
		default:
			return bad("variant", "%q is not one of uncond, cbn, ac", c.Variant)
		}
		if len(c.ChannelMult) == 0 {
			return bad("channel_mult", "empty")
		}
		for _, m := range c.ChannelMult {
			if m <= 0 {
				return bad("channel_mult", "%v has a non-positive entry", c.ChannelMult)
			}
		}
		if c.NumResBlocks < 1 {
			return bad("num_res_blocks", "%d < 1", c.NumResBlocks)
		}
		if div := 1 << (len(c.ChannelMult) - 1); c.ImageSize%div != 0 {
			return bad("image_size", "%d cannot be halved %d times by the U-Net (channel_mult %v); use a multiple of %d",
				c.ImageSize, len(c.ChannelMult)-1, c.ChannelMult, div)
		}
		if c.NullClass && c.Variant == contract.Uncond {
			return bad("null_class", "an unconditional model has no labels to drop")
		}
		for i, r := range c.AttnRes {
			if !slices.Contains(c.resolutions(), r) || slices.Contains(c.AttnRes[:i], r) {
				return bad("attention_resolutions", "%v: each entry must be one of the U-Net's resolutions %v, once", c.AttnRes, c.resolutions())
			}
		}
	case contract.Classifier:
		if len(c.AttnRes) > 0 {
			return bad("attention_resolutions", "%v: the classifier has no attention blocks", c.AttnRes)
		}
		if c.Norm != GroupNorm {
			return bad("norm", "a classifier uses group norm (it must not depend on batch statistics when it judges samples)")
		}
		if c.ImageSize%4 != 0 {
			return bad("image_size", "%d is not a multiple of 4 (the classifier halves it twice)", c.ImageSize)
		}
	default:
		return bad("kind", "%q is not denoiser or classifier", c.Kind)
	}
	// Bounds on what a config (read from a file) may make us allocate.
	switch {
	case c.ImageSize > contract.MaxImageSize:
		return bad("image_size", "%d is over %d", c.ImageSize, contract.MaxImageSize)
	case c.BaseChannels > 4096:
		return bad("base_channels", "%d is over 4096", c.BaseChannels)
	case len(c.ChannelMult) > 8:
		return bad("channel_mult", "%d resolutions is over 8", len(c.ChannelMult))
	case c.NumResBlocks > 16:
		return bad("num_res_blocks", "%d is over 16", c.NumResBlocks)
	case c.NumClasses > contract.MaxClasses || c.NumClasses < 0:
		return bad("num_classes", "%d is out of 0..%d", c.NumClasses, contract.MaxClasses)
	}
	for _, m := range c.ChannelMult {
		if m > 64 {
			return bad("channel_mult", "%v has an entry over 64", c.ChannelMult)
		}
	}
	switch c.Norm {
	case BatchNorm, GroupNorm:
	default:
		return bad("norm", "%q is not batch or group", c.Norm)
	}
	if c.Channels != 1 && c.Channels != 3 {
		return bad("channels", "%d is not 1 or 3", c.Channels)
	}
	if c.ImageSize < 4 {
		return bad("image_size", "%d is too small", c.ImageSize)
	}
	if c.BaseChannels < 1 {
		return bad("base_channels", "%d < 1", c.BaseChannels)
	}
	if c.Norm == GroupNorm {
		for _, ch := range c.widths() {
			if c.Groups < 1 || ch%c.Groups != 0 {
				return bad("groups", "%d does not divide the %d channels of a layer", c.Groups, ch)
			}
		}
	}
	if c.Conditional() || c.Kind == contract.Classifier {
		if c.NumClasses < 2 {
			return bad("num_classes", "%d < 2", c.NumClasses)
		}
	}
	if len(c.ClassNames) != 0 && len(c.ClassNames) != c.NumClasses {
		return bad("class_names", "%d names for %d classes", len(c.ClassNames), c.NumClasses)
	}
	return nil
}

// resolutions lists the image sizes of the U-Net's levels, finest first.
func (c Config) resolutions() []int {
	var r []int
	for i := range c.ChannelMult {
		r = append(r, c.ImageSize>>i)
	}
	return r
}

// widths lists every channel count a normalised layer can have.
func (c Config) widths() []int {
	if c.Kind == contract.Classifier {
		return []int{c.BaseChannels, 2 * c.BaseChannels, 4 * c.BaseChannels}
	}
	var w []int
	for _, m := range c.ChannelMult {
		w = append(w, m*c.BaseChannels)
	}
	return w
}

// ParseConfig decodes a JSON config; unknown fields are errors.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := strictjson.Decode(b, &c, true); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Contract describes the network as the model contract's metadata does, with
// the config itself in Info.Config so the network can be rebuilt from the
// file. The schedule, step and training record are the exporter's to add.
func (c Config) Contract() contract.Info {
	cfg, _ := json.Marshal(c)
	in := contract.Info{Kind: c.Kind, NumClasses: c.NumClasses, ClassNames: c.ClassNames, ImageSize: c.ImageSize,
		Channels: c.Channels, Config: cfg}
	if c.Kind == contract.Denoiser {
		in.Variant, in.HasNull = c.Variant, c.NullClass
	}
	return in
}

// FromContract rebuilds the config a model's metadata carries
// (contract.KeyConfig) and checks that it agrees with the rest of the
// metadata. ok is false when the model carries no config (a model exported
// by another tool).
func FromContract(file string, in contract.Info) (c Config, ok bool, err error) {
	if len(in.Config) == 0 {
		return c, false, nil
	}
	if c, err = ParseConfig(in.Config); err != nil {
		return c, true, fmt.Errorf("%s: metadata %q: %w", file, contract.KeyConfig, err)
	}
	want := c.Contract()
	disagree := func(what string, meta, cfg any) error {
		return fmt.Errorf("%s: metadata %q says %s %v, the rest of the metadata %v", file, contract.KeyConfig, what, cfg, meta)
	}
	switch {
	case want.Kind != in.Kind:
		return c, true, disagree("kind", in.Kind, want.Kind)
	case want.Variant != in.Variant:
		return c, true, disagree("variant", in.Variant, want.Variant)
	case want.NumClasses != in.NumClasses:
		return c, true, disagree("num_classes", in.NumClasses, want.NumClasses)
	case want.ImageSize != in.ImageSize:
		return c, true, disagree("image_size", in.ImageSize, want.ImageSize)
	case want.Channels != in.Channels:
		return c, true, disagree("channels", in.Channels, want.Channels)
	case want.HasNull != in.HasNull:
		return c, true, disagree("null_class", in.HasNull, want.HasNull)
	}
	return c, true, nil
}
