package field

import (
	"errors"
	"fmt"
	"testing"
)

func TestRename(t *testing.T) {
	err := fmt.Errorf("sample: %w", Errorf("diffusion", "Steps", 1001, "out of 1..%d", 1000))
	if err.Error() != "sample: diffusion: Steps 1001: out of 1..1000" {
		t.Fatalf("library message %q", err)
	}
	got := Rename(err, map[string]string{"Steps": "--steps"})
	if got.Error() != "diffusion: --steps 1001: out of 1..1000" {
		t.Fatalf("renamed %q", got)
	}
	var fe *Error
	if !errors.As(got, &fe) || fe.Field != "Steps" {
		t.Fatal("the renamed error no longer unwraps to the field error")
	}
	if s := Errorf("infer", "Shard", "2/2", "bad").Error(); s != `infer: Shard "2/2": bad` {
		t.Fatalf("string values are quoted: %q", s)
	}
	staged := Rename(Errorf("data", "Seed", 3, "bad"), map[string]string{"Seed": "--seed", "data.Seed": "--synthetic-seed"})
	if staged.Error() != "data: --synthetic-seed 3: bad" {
		t.Fatalf("a stage's own mapping must win: %q", staged)
	}
	plain := errors.New("x")
	if Rename(plain, nil) != plain || Rename(err, map[string]string{}) != err {
		t.Fatal("errors without a known field must come back unchanged")
	}
}
