// Command condiff trains class-conditional DDPM denoisers, exports them to
// ONNX, samples them (ONNX Runtime or the pure-Go backend), evaluates and
// serves them. The commands that need no training stack are also in
// condiff-run, which links neither gorgonia nor OpenBLAS.
package main

import "github.com/condiff/condiff/cmd/internal/cli"

func main() {
	cmds := []cli.Command{
		{Name: "train", Summary: "train a denoiser (uncond, cbn = M_CBN, ac = M_AC)", Run: func(a []string) error { return cmdTrain(a, false) }},
		{Name: "distill", Summary: "distil a denoiser into a few-step student (progressive distillation; the student samples in --student-steps steps)", Run: cmdDistill},
		{Name: "dataset", Summary: "write a training set as condiff loads it, as NumPy .npz (the torch trainer's --data-file)", Run: cmdDataset},
		{Name: "train-classifier", Summary: "train an image classifier (for M_AC and evaluation)", Run: func(a []string) error { return cmdTrain(a, true) }},
		{Name: "export", Summary: "turn a run into a self-describing .onnx file", Run: cmdExport},
		{Name: "cas", Summary: "do the samples teach a classifier? (CAS, augmentation gain; adds to an eval report)", Run: cmdCAS},
	}
	cli.Main("condiff", "condiff: class-conditional diffusion models, trained in Go, sampled through ONNX Runtime.", append(cmds, cli.Deploy...))
}
