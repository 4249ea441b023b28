package models

import (
	"fmt"
	"slices"

	"github.com/condiff/condiff/contract"
)

// Denoiser is the DDPM U-Net of Ho et al. (2020): a sinusoidal time
// embedding through an MLP, residual blocks that add it, len(ChannelMult)
// resolutions, skip connections by concatenation, and self-attention
// blocks after the residual blocks of the resolutions in AttnRes (and in
// the middle) when it lists any.
//
// Conditioning by Variant:
//   - uncond: y is ignored (may be nil).
//   - cbn: every norm is followed by gamma(y), beta(y) looked up in per-norm
//     class embedding tables (M_CBN); the others use a learned affine.
//   - ac: y is embedded to one H×W map concatenated to x as an extra channel
//     (M_AC).
type Denoiser struct{ Cfg Config }

// Forward maps x [N C H W], t [N], y [N] to the predicted noise [N C H W].
func (d Denoiser) Forward(o Ops, x, t, y T) T {
	c := d.Cfg
	ch := c.BaseChannels
	temb := d.timeMLP(o, t, ch)

	h := x
	in := c.Channels
	if c.Variant == contract.AC {
		m := o.Gather(o.Param("label_map", []int{c.LabelRows(), c.ImageSize * c.ImageSize}, He(1, 0.5)), y) // [N H·W]
		h = o.Concat(h, o.ToMap(m, c.ImageSize, c.ImageSize))                                               // [N C+1 H W]
		in++
	}
	h = conv(o, "conv_in", h, in, ch, 3, 1, 1, 1)

	skips := []T{h}
	skipCh := []int{ch}
	cur := ch
	for lvl, mult := range c.ChannelMult {
		for i := 0; i < c.NumResBlocks; i++ {
			h = d.resBlock(o, fmt.Sprintf("down.%d.res.%d", lvl, i), h, temb, y, cur, mult*ch)
			cur = mult * ch
			h = d.maybeAttn(o, fmt.Sprintf("down.%d.attn.%d", lvl, i), lvl, h, y, cur)
			skips, skipCh = append(skips, h), append(skipCh, cur)
		}
		if lvl != len(c.ChannelMult)-1 {
			h = conv(o, fmt.Sprintf("down.%d.downsample", lvl), h, cur, cur, 3, 2, 1, 1) // [N cur H/2 W/2]
			skips, skipCh = append(skips, h), append(skipCh, cur)
		}
	}
	h = d.resBlock(o, "mid.res.0", h, temb, y, cur, cur)
	if len(c.AttnRes) > 0 {
		h = d.attnBlock(o, "mid.attn", h, y, cur)
	}
	h = d.resBlock(o, "mid.res.1", h, temb, y, cur, cur)
	for lvl := len(c.ChannelMult) - 1; lvl >= 0; lvl-- {
		mult := c.ChannelMult[lvl]
		for i := 0; i <= c.NumResBlocks; i++ {
			s := skips[len(skips)-1]
			sc := skipCh[len(skipCh)-1]
			skips, skipCh = skips[:len(skips)-1], skipCh[:len(skipCh)-1]
			h = o.Concat(h, s) // [N cur+sc H W]
			h = d.resBlock(o, fmt.Sprintf("up.%d.res.%d", lvl, i), h, temb, y, cur+sc, mult*ch)
			cur = mult * ch
			h = d.maybeAttn(o, fmt.Sprintf("up.%d.attn.%d", lvl, i), lvl, h, y, cur)
		}
		if lvl != 0 {
			h = o.Upsample(h) // [N cur 2H 2W]
			h = conv(o, fmt.Sprintf("up.%d.upsample", lvl), h, cur, cur, 3, 1, 1, 1)
		}
	}
	h = d.norm(o, "out.norm", h, y, cur)
	return conv(o, "conv_out", h, cur, c.Channels, 3, 1, 1, 0) // zero init: the untrained model predicts 0
}

// timeMLP embeds t: sinusoid(ch) -> Linear(4ch) -> SiLU -> Linear(4ch).
func (d Denoiser) timeMLP(o Ops, t T, ch int) T {
	e := o.TimeEmbedding(t, ch) // [N ch]
	e = linear(o, "time.0", e, ch, 4*ch)
	return linear(o, "time.1", o.SiLU(e), 4*ch, 4*ch) // [N 4ch]
}

// resBlock: norm-SiLU-conv, + time projection, norm-SiLU-conv, + skip.
func (d Denoiser) resBlock(o Ops, name string, x, temb, y T, in, out int) T {
	h := conv(o, name+".conv1", d.norm(o, name+".norm1", x, y, in), in, out, 3, 1, 1, 1)
	h = o.AddChannels(h, linear(o, name+".temb", o.SiLU(temb), 4*d.Cfg.BaseChannels, out))
	h = conv(o, name+".conv2", d.norm(o, name+".norm2", h, y, out), out, out, 3, 1, 1, 0.1)
	if in != out {
		x = conv(o, name+".skip", x, in, out, 1, 1, 0, 1)
	}
	return o.Add(x, h)
}

// maybeAttn is an attention block when level lvl's resolution is in
// AttnRes, else x.
func (d Denoiser) maybeAttn(o Ops, name string, lvl int, x, y T, ch int) T {
	if !slices.Contains(d.Cfg.AttnRes, d.Cfg.ImageSize>>lvl) {
		return x
	}
	return d.attnBlock(o, name, x, y, ch)
}

// attnBlock: norm-SiLU, 1×1 projections to q, k, v, attention over the
// positions, a 1×1 projection out (zero init: the block starts as the
// identity), + skip. (DDPM's block normalises without the SiLU; here every
// norm is the fused NormAct, class-conditional for cbn.)
func (d Denoiser) attnBlock(o Ops, name string, x, y T, ch int) T {
	h := d.norm(o, name+".norm", x, y, ch)
	q := conv(o, name+".q", h, ch, ch, 1, 1, 0, 1)
	k := conv(o, name+".k", h, ch, ch, 1, 1, 0, 1)
	v := conv(o, name+".v", h, ch, ch, 1, 1, 0, 1)
	return o.Add(x, conv(o, name+".proj", o.Attend(q, k, v), ch, ch, 1, 1, 0, 0))
}

// norm normalises, applies the affine (class-conditional for cbn) and
// SiLU: the opening of every block.
func (d Denoiser) norm(o Ops, name string, x, y T, ch int) T {
	c := d.Cfg
	if c.Variant == contract.CBN {
		g := o.Gather(o.Param(name+".gamma", []int{c.LabelRows(), ch}, Ones), y) // [N ch]
		b := o.Gather(o.Param(name+".beta", []int{c.LabelRows(), ch}, Zeros), y) // [N ch]
		return o.NormAct(x, g, b, name, c.Norm, c.Groups)
	}
	return o.NormAct(x, o.Param(name+".gamma", []int{ch}, Ones), o.Param(name+".beta", []int{ch}, Zeros), name, c.Norm, c.Groups)
}

// conv declares a conv layer's weight and bias and applies it.
func conv(o Ops, name string, x T, in, out, k, stride, pad int, scale float64) T {
	init := He(in*k*k, scale)
	if scale == 0 {
		init = Zeros
	}
	w := o.Param(name+".weight", []int{out, in, k, k}, init)
	b := o.Param(name+".bias", []int{out}, Zeros)
	return o.Conv(x, w, b, stride, pad)
}

// linear declares a dense layer's weight and bias and applies it.
func linear(o Ops, name string, x T, in, out int) T {
	w := o.Param(name+".weight", []int{in, out}, He(in, 1))
	b := o.Param(name+".bias", []int{out}, Zeros)
	return o.Linear(x, w, b)
}

// Classifier is a small convnet: three conv-norm-SiLU stages (the last two
// halve the resolution), global average pooling to the features, and a linear
// layer to the logits. It judges samples in evaluation and guides M_AC.
type Classifier struct{ Cfg Config }

// Forward maps x [N C H W] to logits [N K] and features [N 4·BaseChannels].
func (m Classifier) Forward(o Ops, x T) (logits, features T) {
	c := m.Cfg
	ch := c.BaseChannels
	stage := func(name string, h T, in, out, stride int) T {
		h = conv(o, name+".conv", h, in, out, 3, stride, 1, 1)
		return o.NormAct(h, o.Param(name+".norm.gamma", []int{out}, Ones), o.Param(name+".norm.beta", []int{out}, Zeros), name+".norm", c.Norm, c.Groups)
	}
	h := stage("stage.0", x, c.Channels, ch, 1)
	h = stage("stage.1", h, ch, 2*ch, 2)   // [N 2ch H/2 W/2]
	h = stage("stage.2", h, 2*ch, 4*ch, 2) // [N 4ch H/4 W/4]
	features = o.GlobalMean(h)             // [N 4ch]
	return linear(o, "head", features, 4*ch, c.NumClasses), features
}
