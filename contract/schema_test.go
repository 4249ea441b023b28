package contract

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/condiff/condiff/diffusion"
)

var updateSchema = flag.Bool("update", false, "rewrite python/condiff_torch/contract.json from Schema")

const schemaFile = "../python/condiff_torch/contract.json"

// TestSchemaFile: the torch exporter's copy of the schema is Schema.
func TestSchemaFile(t *testing.T) {
	want := SchemaJSON()
	if *updateSchema {
		if err := os.WriteFile(schemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not contract.Schema: run go test ./contract -run TestSchemaFile -args -update", schemaFile)
	}
	var parsed struct{ Keys []SchemaKey }
	if err := json.Unmarshal(got, &parsed); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed.Keys, Schema) {
		t.Fatalf("%s does not read back as Schema: %+v", schemaFile, parsed.Keys)
	}
}

// TestSchemaMetadata: what Info.Metadata writes, for each kind with every
// optional field set and with none, is what Schema says: every key in the
// table for that kind, every required one present, values in its format;
// and Parse reads it back.
func TestSchemaMetadata(t *testing.T) {
	full := Info{Kind: Denoiser, Variant: CBN, NumClasses: 3, HasNull: true, ImageSize: 8, Channels: 1,
		Schedule: diffusion.Spec{Kind: "linear", T: 10, BetaStart: 1e-4, BetaEnd: 0.02}, Prediction: PredictionV,
		Step: 5, Train: json.RawMessage(`{"steps":5}`), Config: json.RawMessage(`{"kind":"denoiser"}`),
		Distilled: &Distilled{Sampler: "ddim-trailing", Steps: 2}}
	bare := Info{Kind: Denoiser, Variant: Uncond, NumClasses: 3, ImageSize: 8, Channels: 1,
		Schedule: diffusion.Spec{Kind: "linear", T: 10, BetaStart: 1e-4, BetaEnd: 0.02}}
	clf := Info{Kind: Classifier, NumClasses: 3, ImageSize: 8, Channels: 1, Step: 2, Train: json.RawMessage(`{}`), Config: json.RawMessage(`{}`)}
	for name, c := range map[string]struct {
		in       Info
		optional bool // every optional key of the kind present
	}{"full denoiser": {full, true}, "bare denoiser": {bare, false}, "classifier": {clf, true}} {
		md := c.in.Metadata()
		seen := 0
		for _, k := range Schema {
			v, ok := md[k.Key]
			applies := slices.Contains(k.Kinds, c.in.Kind)
			switch {
			case ok && !applies:
				t.Errorf("%s: %s written for a %s; Schema says it is for %v", name, k.Key, c.in.Kind, k.Kinds)
			case !ok && applies && (k.Required || c.optional):
				t.Errorf("%s: %s missing (required %v)", name, k.Key, k.Required)
			}
			if !ok {
				continue
			}
			seen++
			switch k.Format {
			case "int":
				if _, err := strconv.Atoi(v); err != nil {
					t.Errorf("%s: %s = %q is not an int", name, k.Key, v)
				}
			case "json":
				if !json.Valid([]byte(v)) {
					t.Errorf("%s: %s = %q is not JSON", name, k.Key, v)
				}
			case "string":
			default:
				t.Errorf("Schema: %s has format %q", k.Key, k.Format)
			}
		}
		if seen != len(md) {
			t.Errorf("%s: Metadata wrote %d keys, %d of them in Schema: %v", name, len(md), seen, md)
		}
		if _, err := Parse("schema_test", md); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
