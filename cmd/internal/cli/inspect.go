package cli

import (
	"fmt"
	"os"

	"github.com/condiff/condiff/infer"
)

// Inspect is `inspect`: print an .onnx model's inputs, outputs, metadata and
// ops, and whether it follows the model contract.
func Inspect(args []string) error {
	fs := NewFlags("inspect")
	if err := fs.FlagSet.Parse(args); err != nil { // the model follows the flags
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: inspect MODEL.onnx")
	}
	return infer.Inspect(fs.Arg(0), os.Stdout)
}
