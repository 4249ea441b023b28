package contract

import (
	"bytes"
	"encoding/json"
)

// SchemaKey is one metadata key of the contract: which Info field it
// carries, the kinds of model that carry it, how its value is written,
// and whether every model of those kinds has it.
type SchemaKey struct {
	Key      string `json:"key"`
	Field    string `json:"field"`    // the Info field (or, for null_class, what it derives from)
	Kinds    []Kind `json:"kinds"`    // the kinds of model that carry it
	Format   string `json:"format"`   // "int" (decimal), "string" or "json"
	Required bool   `json:"required"` // every model of those kinds has it
	Doc      string `json:"doc"`
}

var anyKind = []Kind{Denoiser, Classifier}

// Schema lists every metadata key ("required": every producer writes it,
// though Parse still reads a model without condiff.kind as a denoiser).
// The torch exporter (python/condiff_torch/export.py) writes its metadata
// from it, read as python/condiff_torch/contract.json (SchemaJSON; held to
// this table by TestSchemaFile); Go's own writer, Info.Metadata, is held
// to it by TestSchemaMetadata.
var Schema = []SchemaKey{
	{KeyKind, "Kind", anyKind, "string", true, "denoiser or classifier; absent means denoiser"},
	{KeyVariant, "Variant", []Kind{Denoiser}, "string", true, "uncond, cbn or ac"},
	{KeyNumClasses, "NumClasses", anyKind, "int", true, "K, the number of classes"},
	{KeyClassNames, "ClassNames", anyKind, "json", true, "JSON array of the K class names"},
	{KeyNullClass, "HasNull", []Kind{Denoiser}, "int", false, "K, only when trained with label dropout (the null class's label)"},
	{KeyImageSize, "ImageSize", anyKind, "int", true, "H = W"},
	{KeyChannels, "Channels", anyKind, "int", true, "C: 1 or 3"},
	{KeySchedule, "Schedule", []Kind{Denoiser}, "json", true, "the noise schedule (diffusion.Spec)"},
	{KeyPrediction, "Prediction", []Kind{Denoiser}, "string", true, "what the eps output holds: epsilon or v"},
	{KeyTrain, "Train", anyKind, "json", false, "how it was trained (informational)"},
	{KeyStep, "Step", anyKind, "int", false, "optimiser steps behind the weights (informational)"},
	{KeyConfig, "Config", anyKind, "json", false, "the architecture that rebuilds the network (models.Config)"},
	{KeyDistilled, "Distilled", []Kind{Denoiser}, "json", false, "a distilled student's chain and guidance (Distilled)"},
}

// SchemaJSON is Schema as the indented JSON of
// python/condiff_torch/contract.json.
func SchemaJSON() []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"comment\": \"condiff's model contract metadata, written by contract.SchemaJSON (go test ./contract -run TestSchemaFile -args -update rewrites it); the torch exporter writes its keys from this list\",\n  \"keys\": [\n")
	for i, k := range Schema {
		line, err := json.Marshal(k)
		if err != nil {
			panic(err) // plain strings and bools
		}
		b.WriteString("    ")
		b.Write(line)
		if i < len(Schema)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}
