// Command condiff-run samples and evaluates exported condiff models: the
// deployment binary. It links neither gorgonia nor OpenBLAS (a test holds
// it to that), so it starts on a machine with only libonnxruntime.so, which
// it opens at run time.
package main

import "github.com/condiff/condiff/cmd/internal/cli"

func main() {
	cli.Main("condiff-run", "condiff-run: sample and evaluate condiff models through ONNX Runtime (no training stack needed).", cli.Deploy)
}
