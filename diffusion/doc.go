// Package diffusion holds all of condiff's diffusion maths: schedules as
// plain float64 data, and the functions over them: the forward process
// q(x_t | x_0), the clean image x̂₀ implied by a noise prediction, timestep
// respacing, guidance (weights, intervals, autoguidance), the DDPM, DDIM and
// DPM-Solver++(2M) update steps, and the reverse-chain loops that drive a
// Denoiser with them (Sample, and Batch, whose images each keep their own
// state: the samplers' per-image state is the one stateful part). Training
// (noising, the M_AC loss) and sampling both use it; it knows nothing of
// ONNX Runtime or gorgonia.
//
// A named schedule never changes once committed.
package diffusion
