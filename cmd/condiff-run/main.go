// Command condiff-run samples, evaluates and serves exported condiff
// models: the deployment binary. It links neither gorgonia nor OpenBLAS (a
// test holds it to that). It samples through ONNX Runtime, opened at run
// time when libonnxruntime.so is there, or with its pure-Go backend, which
// needs nothing at all (the CGO_ENABLED=0 builds have only that one).
package main

import "github.com/condiff/condiff/cmd/internal/cli"

func main() {
	cli.Main("condiff-run", "condiff-run: sample, evaluate and serve condiff models, through ONNX Runtime or the pure-Go backend (no training stack needed).", cli.Deploy)
}
