package contract

import (
	"strings"
	"testing"
)

// FuzzParse: any metadata either parses into an Info within the limits, or
// is refused with the file named; it never panics, and what parses writes
// back metadata that parses to the same Info.
func FuzzParse(f *testing.F) {
	good := denoiserInfo().Metadata()
	f.Add(good[KeyKind], good[KeyVariant], good[KeyNumClasses], good[KeyClassNames], good[KeyNullClass], good[KeyImageSize], good[KeyChannels], good[KeySchedule], good[KeyPrediction])
	f.Add("classifier", "", "10", `["a"]`, "", "28", "1", "", "")
	f.Add("denoiser", "uncond", "1000000000000", "", "", "100000", "2", `{"kind":"cosine","T":99999999,"s":0}`, "epsilon")
	f.Fuzz(func(t *testing.T, kind, variant, classes, names, null, size, channels, schedule, prediction string) {
		md := map[string]string{KeyKind: kind, KeyVariant: variant, KeyNumClasses: classes, KeyImageSize: size,
			KeyChannels: channels, KeySchedule: schedule, KeyPrediction: prediction}
		if names != "" {
			md[KeyClassNames] = names
		}
		if null != "" {
			md[KeyNullClass] = null
		}
		in, err := Parse("f.onnx", md)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "contract: f.onnx: ") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		if in.NumClasses > MaxClasses || in.ImageSize > MaxImageSize || in.ImageSize < 1 || (in.Channels != 1 && in.Channels != 3) {
			t.Fatalf("out of limits: %+v", in)
		}
		back, err := Parse("f.onnx", in.Metadata())
		if err != nil || back.Kind != in.Kind || back.NumClasses != in.NumClasses || back.HasNull != in.HasNull || back.Schedule != in.Schedule {
			t.Fatalf("round trip: %+v -> %+v, %v", in, back, err)
		}
	})
}
