// Package diffusion holds all of condiff's diffusion maths, as plain float64
// data and pure functions: noise schedules, the forward process q(x_t | x_0),
// the clean image x̂₀ implied by a noise prediction, timestep respacing, the
// DDPM, DDIM and DPM-Solver++(2M) update steps, and the reverse-chain loop
// that drives a Denoiser with them. Training (noising, the M_AC loss) and
// sampling both use it; it knows nothing of ONNX Runtime or gorgonia.
//
// A named schedule never changes once committed.
package diffusion
