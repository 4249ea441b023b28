package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/condiff/condiff/cmd/internal/cli"
	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/internal/fsutil"
)

// cmdDataset writes a training set as condiff loads it, as a NumPy .npz
// (data.Set.WriteNPZ): what the torch trainer's --data-file reads for the
// datasets it has no reader of.
func cmdDataset(args []string) error {
	fs := cli.NewFlags("dataset")
	var o data.Options
	ds := cli.DataFlags(fs, &o, cli.DataName|cli.DataClasses|cli.DataSeed, "synthetic", "dataset: synthetic, mnist, fashion-mnist or folder:DIR")
	fs.IntVar(&o.Size, "size", 32, "image height and width (a run's --size; an --init model's image size)")
	fs.IntVar(&o.Channels, "channels", 1, "1 (grayscale) or 3 (RGB), for folder and synthetic data")
	fs.BoolVar(&o.SkipBad, "skip-bad", false, "skip unreadable images in a folder dataset, counting them")
	out := fs.String("out", "", "the .npz file to write (required)")
	fs.Sets(map[string]string{"size": "data.Size", "channels": "data.Channels", "skip-bad": "data.SkipBad"})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	if !strings.HasSuffix(*out, ".npz") {
		return fmt.Errorf("--out %s: the file is a NumPy archive; name it .npz", *out)
	}
	ds.Finish()
	set, err := data.Load(o)
	if err != nil {
		return fs.Flagged(err)
	}
	if err := fsutil.WriteAtomic(*out, func(w io.Writer) error { return set.WriteNPZ(w) }); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	fmt.Fprintf(os.Stderr, "dataset: %s: %d images of %d×%d×%d, %d classes in %s\n", set.Name, set.N, set.C, set.Size, set.Size, len(set.ClassNames), *out)
	return nil
}
