package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/internal/field"
)

// Flags is one command's flag set and the library option fields its flags
// set. The command owns the mapping: an error it prints names one of its
// own flags, or the library's field name when no flag of it sets the field.
type Flags struct {
	*flag.FlagSet
	fields map[string]string // "Field" or "stage.Field" → "--flag"
}

// NewFlags returns the empty flag set of command name.
func NewFlags(name string) *Flags {
	return &Flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), fields: map[string]string{}}
}

// Sets records which option fields each flag sets: flag name → the
// fields, comma-separated (each "Field", or "stage.Field" where the field
// means something else in another stage). The flags must be defined first:
// naming one that is not is a programming error.
func (f *Flags) Sets(fields map[string]string) {
	for name, fs := range fields {
		if f.Lookup(name) == nil {
			panic(fmt.Sprintf("cli: %s has no flag --%s", f.Name(), name))
		}
		for _, fl := range strings.Split(fs, ",") {
			f.fields[fl] = "--" + name
		}
	}
}

// Flagged rewrites a library's field error in this command's flag terms.
func (f *Flags) Flagged(err error) error { return field.Rename(err, f.fields) }

// Parse parses args and refuses positional arguments after the flags.
func (f *Flags) Parse(args []string) error { return Parse(f.FlagSet, args) }

// IsSet reports whether the flag was given on the command line.
func (f *Flags) IsSet(name string) bool { return IsSet(f.FlagSet, name) }

// Dataset is the data flags shared by train, eval and cas, registered by
// DataFlags: what a command asks for is the subset it takes.
type Dataset struct {
	o       *data.Options
	classes *string
}

// Data flags a command can take.
const (
	DataName    = 1 << iota // --data
	DataClasses             // --classes
	DataSeed                // --synthetic-seed (train seeds its synthetic set with --seed)
)

// DataFlags registers --data-dir and --synthetic-per-class, and the flags
// of which, setting o. name and usage are --data's default and help line.
func DataFlags(f *Flags, o *data.Options, which int, name, usage string) *Dataset {
	d := &Dataset{o: o}
	if which&DataName != 0 {
		f.StringVar(&o.Name, "data", name, usage)
		f.Sets(map[string]string{"data": "Data,data.Name"})
	}
	f.StringVar(&o.Dir, "data-dir", "", "directory of the MNIST-style IDX files (default: the module cache / Debian location)")
	f.Sets(map[string]string{"data-dir": "data.Dir"})
	if which&DataClasses != 0 {
		d.classes = f.String("classes", "", "comma-separated subset of classes (names or indices), e.g. trouser,bag")
		f.Sets(map[string]string{"classes": "data.Classes"})
	}
	f.IntVar(&o.PerClass, "synthetic-per-class", 1000, "images per class of the synthetic dataset")
	f.Sets(map[string]string{"synthetic-per-class": "data.PerClass"})
	if which&DataSeed != 0 {
		f.Uint64Var(&o.Seed, "synthetic-seed", 1, "seed of the synthetic dataset (its test split is a stream of its own)")
		f.Sets(map[string]string{"synthetic-seed": "data.Seed"})
	}
	return d
}

// Finish types what the flags held as text; call it after Parse.
func (d *Dataset) Finish() {
	if d.classes != nil && *d.classes != "" {
		d.o.Classes = strings.Split(*d.classes, ",")
	}
}
