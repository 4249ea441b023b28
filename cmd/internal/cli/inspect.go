package cli

import (
	"flag"
	"fmt"
	"os"

	"github.com/condiff/condiff/infer"
)

// Inspect is `inspect`: print an .onnx model's inputs, outputs, metadata and
// ops, and whether it follows the model contract.
func Inspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: inspect MODEL.onnx")
	}
	return infer.Inspect(fs.Arg(0), os.Stdout)
}
