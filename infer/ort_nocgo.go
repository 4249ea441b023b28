//go:build !cgo

package infer

// Init reports that ONNX Runtime is not in this build.
func Init(lib string) error { return errNoORT }

func envLibPath() string { return "" }

func openORT(path string, o Options) (*Session, error) { return nil, errNoORT }
