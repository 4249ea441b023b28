package train

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/condiff/condiff/data"
	"github.com/condiff/condiff/models"
	"github.com/condiff/condiff/schedule"
)

// tinyOptions is a small synthetic run: 16×16, base width 8.
func tinyOptions(t *testing.T, variant, norm string) Options {
	t.Helper()
	m := models.DefaultDenoiser()
	m.Variant, m.Norm, m.BaseChannels, m.ChannelMult, m.Groups = variant, norm, 8, []int{1, 2}, 4
	sp, _ := schedule.Default("linear", 1000)
	return Options{Out: t.TempDir(), Model: m, Steps: 30, Batch: 16, LR: 2e-3, Seed: 7, Schedule: sp,
		EMADecay: 0.999, GradClip: 1, SaveEvery: 10,
		Data: data.Options{Name: "synthetic", Size: 16, Channels: 1, Seed: 7, PerClass: 64}}
}

func TestTrainLossFalls(t *testing.T) {
	for _, tc := range []struct{ variant, norm string }{{"uncond", "batch"}, {"cbn", "batch"}, {"cbn", "group"}, {"ac", "batch"}} {
		t.Run(tc.variant+"-"+tc.norm, func(t *testing.T) {
			o := tinyOptions(t, tc.variant, tc.norm)
			if tc.variant == "ac" {
				o.ACWeight = 0.1
			}
			if tc.variant == "cbn" {
				o.CFGDrop = 0.2
			}
			ck, err := Run(o)
			if err != nil {
				t.Fatal(err)
			}
			log, err := ReadLog(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != 30 || ck.Step != 30 {
				t.Fatalf("log has %d lines, checkpoint step %d; want 30", len(log), ck.Step)
			}
			first, last := 0.0, 0.0
			for _, e := range log[:5] {
				first += e.MSE / 5
			}
			for _, e := range log[25:] {
				last += e.MSE / 5
			}
			t.Logf("mse %.3f -> %.3f", first, last)
			if !(last < first) || math.IsNaN(last) {
				t.Fatalf("mse did not fall: %.4f -> %.4f", first, last)
			}
			if _, err := os.Stat(filepath.Join(o.Out, CheckpointFile)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
