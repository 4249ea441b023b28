package main

import "errors"

func cmdEval(a []string) error    { return errors.New("eval: not built yet") }
func cmdCompare(a []string) error { return errors.New("compare: not built yet") }
