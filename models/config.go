package models

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Variants of the denoiser.
const (
	Uncond = "uncond" // unconditional DDPM baseline
	CBN    = "cbn"    // M_CBN: every norm scaled and shifted by class embeddings
	AC     = "ac"     // M_AC: label map as an extra input channel (+ auxiliary classifier loss in training)
)

// Norm kinds.
const (
	BatchNorm = "batch"
	GroupNorm = "group"
)

// Config is everything that builds a network. It travels inside checkpoints and
// exported models, so a model can always be rebuilt from its artifact.
type Config struct {
	Kind         string   `json:"kind"`    // "denoiser" or "classifier"
	Variant      string   `json:"variant"` // uncond, cbn, ac (denoiser only)
	Norm         string   `json:"norm"`    // batch or group
	Groups       int      `json:"groups"`  // groups for group norm
	Channels     int      `json:"channels"`
	ImageSize    int      `json:"image_size"`
	BaseChannels int      `json:"base_channels"`
	ChannelMult  []int    `json:"channel_mult"`
	NumResBlocks int      `json:"num_res_blocks"`
	NumClasses   int      `json:"num_classes"`
	ClassNames   []string `json:"class_names"`
	NullClass    bool     `json:"null_class"` // a learned "no label" row at index NumClasses
}

// DefaultDenoiser is the U-Net used when no architecture flag is given.
func DefaultDenoiser() Config {
	return Config{Kind: "denoiser", Variant: CBN, Norm: BatchNorm, Groups: 8, Channels: 1, ImageSize: 32,
		BaseChannels: 32, ChannelMult: []int{1, 2, 2}, NumResBlocks: 1}
}

// DefaultClassifier is the small convnet used for M_AC and evaluation.
func DefaultClassifier() Config {
	return Config{Kind: "classifier", Norm: GroupNorm, Groups: 8, Channels: 1, ImageSize: 32, BaseChannels: 32}
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
func (c Config) Conditional() bool { return c.Kind == "denoiser" && c.Variant != Uncond }

// Validate checks the config and says which field is wrong.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, a...))
	}
	switch c.Kind {
	case "denoiser":
		switch c.Variant {
		case Uncond, CBN, AC:
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
		if c.NullClass && c.Variant == Uncond {
			return bad("null_class", "an unconditional model has no labels to drop")
		}
	case "classifier":
		if c.Norm != GroupNorm {
			return bad("norm", "a classifier uses group norm (it must not depend on batch statistics when it judges samples)")
		}
		if c.ImageSize%4 != 0 {
			return bad("image_size", "%d is not a multiple of 4 (the classifier halves it twice)", c.ImageSize)
		}
	default:
		return bad("kind", "%q is not denoiser or classifier", c.Kind)
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
	if c.Conditional() || c.Kind == "classifier" {
		if c.NumClasses < 2 {
			return bad("num_classes", "%d < 2", c.NumClasses)
		}
	}
	if len(c.ClassNames) != 0 && len(c.ClassNames) != c.NumClasses {
		return bad("class_names", "%d names for %d classes", len(c.ClassNames), c.NumClasses)
	}
	return nil
}

// widths lists every channel count a normalised layer can have.
func (c Config) widths() []int {
	if c.Kind == "classifier" {
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
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}
