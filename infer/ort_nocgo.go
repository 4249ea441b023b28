//go:build !cgo

package infer

import "fmt"

// errNoORT: onnxruntime_go needs cgo, so a CGO_ENABLED=0 build (static,
// cross-compiled, WebAssembly) has the Go backend only.
var errNoORT = fmt.Errorf("infer: this build has no ONNX Runtime (built with CGO_ENABLED=0); use --backend go (or auto)")

// Init reports that ONNX Runtime is not in this build.
func Init(lib string) error { return errNoORT }

func envLibPath() string { return "" }

func openORT(path string, o Options) (*Session, error) { return nil, errNoORT }
