//go:build js && wasm

// Command condiff-web is condiff's sampler in a browser tab: built for
// GOOS=js GOARCH=wasm, it runs the Go backend (no ONNX Runtime, no server)
// and gives the page two functions,
//
//	condiffInfo(model: Uint8Array, sidecar?: Uint8Array)
//	    → Promise<{classes: string[], sampler, steps, guidance, interval, size}>
//	condiffSample(model: Uint8Array, opts: {class, n, steps, guidance, interval, seed},
//	              onStep: (done, total) => void) → Promise<{pngs: string[]}>
//
// condiffInfo gives the model's sampling defaults as `sample` takes them
// (infer's: its sidecar NAME.sampling.json, which the page fetches beside
// the model, or the built-in ones); condiffSample samples n images of one
// class with DDIM and resolves to PNG data URLs. The in-browser sampler has
// one model: a sidecar's guide is not used. The page is
// docs/web/index.html; `make release` puts both, with Go's wasm_exec.js and
// the shipped model, in dist/web/.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image/png"
	"syscall/js"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

func main() {
	js.Global().Set("condiffSample", js.FuncOf(func(this js.Value, args []js.Value) any {
		return promise(func() (any, error) { return sample(args) })
	}))
	js.Global().Set("condiffInfo", js.FuncOf(func(this js.Value, args []js.Value) any {
		return promise(func() (any, error) { return modelInfo(args) })
	}))
	js.Global().Set("condiffReady", true)
	select {}
}

// promise runs f off the event loop and settles a JS Promise with it.
func promise(f func() (any, error)) js.Value {
	return js.Global().Get("Promise").New(js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	}))
}

// opened is the session of the model the page passed last, kept between
// calls: the page passes the same bytes to condiffInfo and to every
// condiffSample, and the model is decoded once, not once per call.
var opened struct {
	sum [sha256.Size]byte
	s   *infer.Session
}

// open returns the session of the model b, opening it unless it is the
// one opened last.
func open(b []byte) (*infer.Session, error) {
	sum := sha256.Sum256(b)
	if opened.s != nil && sum == opened.sum {
		return opened.s, nil
	}
	s, err := infer.OpenGoBytes("model.onnx", b, infer.Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	if opened.s != nil {
		opened.s.Close()
	}
	opened.sum, opened.s = sum, s
	return s, nil
}

// modelInfo(model[, sidecar]) → {classes, sampler, steps, guidance,
// interval, size}: what the page's controls offer, and their defaults.
func modelInfo(args []js.Value) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("condiffInfo(model[, sidecar])")
	}
	b := make([]byte, args[0].Get("length").Int())
	js.CopyBytesToGo(b, args[0])
	s, err := open(b)
	if err != nil {
		return nil, err
	}
	names := make([]any, s.Info.NumClasses)
	for c := range names {
		names[c] = s.Info.ClassName(c)
	}
	d := infer.BuiltinDefaults(s.Info)
	if len(args) > 1 && args[1].Truthy() {
		side := make([]byte, args[1].Get("length").Int())
		js.CopyBytesToGo(side, args[1])
		if d, err = infer.ParseDefaults("model.sampling.json", side, s.Info); err != nil {
			return nil, err
		}
	}
	d.Guide = "" // the page has no guide
	smp, err := d.Resolve(infer.Given{}, s.Info)
	if err != nil {
		return nil, err
	}
	steps := smp.Steps
	if steps == 0 {
		steps = diffusion.DefaultSteps
	}
	interval := "none"
	if !smp.Interval.Everywhere() {
		interval = smp.Interval.String()
	}
	return map[string]any{"classes": names, "sampler": smp.Sampler.Name(), "steps": steps, "guidance": smp.Guidance, "interval": interval, "size": s.Info.ImageSize}, nil
}

func sample(args []js.Value) (any, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("condiffSample(model, opts[, onStep])")
	}
	b := make([]byte, args[0].Get("length").Int())
	js.CopyBytesToGo(b, args[0])
	opt := func(name string, def float64) float64 {
		if v := args[1].Get(name); v.Type() == js.TypeNumber {
			return v.Float()
		}
		return def
	}
	s, err := open(b)
	if err != nil {
		return nil, err
	}
	info := s.Info
	// What the page gave over the built-in defaults (it sends the model's
	// own, from modelInfo), merged and checked as sample does.
	var g infer.Given
	for name, p := range map[string]**float64{"guidance": &g.Guidance, "eta": &g.Eta} {
		if v := args[1].Get(name); v.Type() == js.TypeNumber {
			f := v.Float()
			*p = &f
		}
	}
	if v := args[1].Get("steps"); v.Type() == js.TypeNumber {
		n := v.Int()
		g.Steps = &n
	}
	if v := args[1].Get("seed"); v.Type() == js.TypeNumber {
		seed := uint64(v.Float())
		g.Seed = &seed
	}
	if v := args[1].Get("interval"); v.Type() == js.TypeString {
		iv, err := diffusion.ParseInterval(v.String())
		if err != nil {
			return nil, err
		}
		g.Interval = &iv
	}
	smp, err := infer.BuiltinDefaults(info).Resolve(g, info)
	if err != nil {
		return nil, err
	}
	if err := smp.Check(info); err != nil {
		return nil, err
	}
	sch, err := info.Schedule.Build()
	if err != nil {
		return nil, err
	}
	n := int(opt("n", 4))
	if n < 1 || n > 64 {
		return nil, fmt.Errorf("n %d: out of 1..64", n)
	}
	choice := infer.ClassChoice{}
	if info.Conditional() {
		choice = infer.OneClass(int(opt("class", 0)))
	}
	indices, labels, err := infer.Plan(info, choice, n, infer.Shard{})
	if err != nil {
		return nil, err
	}
	req := diffusion.Request{Sampler: smp.Sampler, Steps: smp.Steps, Eta: smp.Eta, Guidance: smp.Guidance, Interval: smp.Interval, Null: info.Null(),
		Seed: smp.Seed, Batch: n, Values: info.Channels * info.ImageSize * info.ImageSize, Indices: indices, Labels: labels}
	ts, err := req.Check(sch.Spec.T)
	if err != nil {
		return nil, err
	}
	onStep := js.Undefined()
	if len(args) > 2 && args[2].Type() == js.TypeFunction {
		onStep = args[2]
	}
	step := 0
	pngs := make([]any, n)
	pos := map[int]int{}
	for k, i := range indices {
		pos[i] = k
	}
	err = diffusion.Sample(context.Background(), s, sch, req, func() {
		step++
		if onStep.Truthy() {
			onStep.Invoke(step, len(ts))
		}
		time.Sleep(time.Millisecond) // back to the event loop: the page repaints its progress
	}, func(idx []int, x []float32) error {
		d := req.Values
		for k, i := range idx {
			var buf bytes.Buffer
			if err := png.Encode(&buf, infer.ToImage(x[k*d:(k+1)*d], info.Channels, info.ImageSize)); err != nil {
				return err
			}
			pngs[pos[i]] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"pngs": pngs}, nil
}
