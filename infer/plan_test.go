package infer

import (
	"slices"
	"strings"
	"testing"

	"github.com/condiff/condiff/contract"
)

func TestPlanAndNames(t *testing.T) {
	info := contract.Info{Kind: contract.Denoiser, Variant: contract.CBN, NumClasses: 3, ClassNames: []string{"a", "../b", "c"}}
	idx, labels, err := Plan(info, ClassChoice{}, 2, Shard{1, 2})
	if err != nil || !slices.Equal(idx, []int{1, 3, 5}) || !slices.Equal(labels, []int{0, 1, 2}) {
		t.Fatalf("plan: %v %v %v", idx, labels, err)
	}
	if _, err := info.ClassIndex("zebra"); err == nil || !strings.Contains(err.Error(), "valid classes: a, ../b, c") {
		t.Fatalf("unknown class: %v", err)
	}
	if c, err := info.ClassIndex("../b"); err != nil || c != 1 {
		t.Fatalf("class by name: %d %v", c, err)
	}
	if _, _, err := Plan(info, OneClass(3), 2, Shard{}); err == nil || !strings.Contains(err.Error(), "Class 3: out of 0..2") {
		t.Fatalf("class out of range: %v", err)
	}
	for _, bad := range []string{"2/2", "x", "-1/2", "1/0", "1/2/3", "01/2"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("shard %q accepted", bad)
		}
	}
	if s, err := ParseShard("1/4"); err != nil || s != (Shard{1, 4}) || s.String() != "1/4" {
		t.Errorf("ParseShard(1/4) = %v %v", s, err)
	}
	if _, _, err := Plan(info, ClassChoice{}, 2, Shard{2, 2}); err == nil {
		t.Error("shard 2/2 accepted by Plan")
	}
	if _, _, err := Plan(info, OneClass(0), 0, Shard{}); err == nil {
		t.Error("n=0 accepted")
	}
	unc := contract.Info{Kind: contract.Denoiser, Variant: contract.Uncond, NumClasses: 3}
	if _, _, err := Plan(unc, OneClass(1), 2, Shard{}); err == nil || !strings.Contains(err.Error(), "unconditional") {
		t.Errorf("class on an unconditional model: %v", err)
	}
	if got := SanitizeName("../b"); got != "_b" {
		t.Errorf("SanitizeName(../b) = %q", got)
	}
	if got := SanitizeName("a/b c"); got != "a_b_c" {
		t.Errorf("SanitizeName = %q", got)
	}
}
