#!/usr/bin/env bash
# make bench: training throughput (OpenBLAS and pure-Go BLAS builds), sampling
# throughput and memory, the distilled students against their teachers, the
# Go backend against ONNX Runtime (and the WebAssembly build under Node,
# the static binary's size), the sampling service under load (throughput
# against offline sampling, latency against one request at a time, RSS over 10
# minutes), and the PyTorch CPU reference, measured in one run on
# this machine; prints one JSON object with the ratios (also in out/bench.json),
# and the per-op profile of a training step (out/bench/train-profile.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 -c 'import torch' 2>/dev/null || {
  echo "bench: installing python3-torch (the reference)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch >/dev/null
}
mkdir -p out/bench
go build -o out/bench/bench-openblas ./cmd/condiff-bench
go build -tags purego -o out/bench/bench-purego ./cmd/condiff-bench
threads=$(nproc)
echo "bench: training, OpenBLAS" >&2;   out/bench/bench-openblas -mode train > out/bench/train-openblas.json
# An OPENBLAS_CORETYPE in the environment pins OpenBLAS's kernels; the same
# training is then also timed with OpenBLAS's own choice for this CPU.
rm -f out/bench/train-openblas-own.json
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "bench: training, OpenBLAS without OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" >&2
  env -u OPENBLAS_CORETYPE out/bench/bench-openblas -mode train > out/bench/train-openblas-own.json
fi
echo "bench: training, pure Go" >&2;    out/bench/bench-purego -mode train > out/bench/train-purego.json
echo "bench: training memory over 500 steps" >&2; out/bench/bench-openblas -mode train-rss > out/bench/train-rss.json
echo "bench: sampling (ONNX Runtime)" >&2; out/bench/bench-openblas -mode sample > out/bench/sample.json
echo "bench: the Go backend against ONNX Runtime (shipped MNIST, DDIM 20, batch 64 and 1)" >&2
out/bench/bench-openblas -mode backends > out/bench/backends.json
echo "bench: the shipped students against their teachers, each at its defaults" >&2
for name in mnist fashion; do
  out/bench/bench-openblas -mode students -model assets/pretrained/$name-cbn.onnx \
    -student assets/pretrained/$name-cbn-student.onnx > out/bench/students-$name.json
  # Against the teacher guiding every step (DDIM 20: 40 rows per image, the
  # defaults before guidance intervals).
  out/bench/bench-openblas -mode students -model assets/pretrained/$name-cbn.onnx -teacher-interval none \
    -student assets/pretrained/$name-cbn-student.onnx > out/bench/students-$name-every.json
done
# The 2-step students: one more round of each shipped student's line, not
# shipped as files (exported here from their runs; docs/distill).
go build -o out/bench/condiff ./cmd/condiff
for pair in mnist=mnist-student2 fashion=fashion-from32w3-student2; do
  name=${pair%%=*} run=assets/pretrained/${pair#*=}.run
  echo "bench: $run against its teacher" >&2
  out/bench/condiff export --run "$run" --out "out/bench/$name-student2.onnx" >/dev/null
  out/bench/bench-openblas -mode students -model assets/pretrained/$name-cbn.onnx \
    -student "out/bench/$name-student2.onnx" > "out/bench/students-$name-2step.json"
done
echo "bench: the GEMM kernel against OpenBLAS on sampling's and training's shapes" >&2
out/bench/bench-openblas -mode gemm > out/bench/gemm.json
echo "bench: the static and WebAssembly builds" >&2
CGO_ENABLED=0 go build -o out/bench/condiff-run-static ./cmd/condiff-run
GOOS=js GOARCH=wasm go build -o out/bench/condiff-run.wasm ./cmd/condiff-run
wasm_exec="$(go env GOROOT)/lib/wasm/wasm_exec_node.js"
rm -rf out/bench/wasm-samples
wasm_start=$(date +%s.%N)
node "$wasm_exec" out/bench/condiff-run.wasm sample --backend go --class 3 --n 4 --steps 20 --seed 1 \
  --model "$PWD/assets/pretrained/mnist-cbn.onnx" --out "$PWD/out/bench/wasm-samples" 2>/dev/null
wasm_end=$(date +%s.%N)
python3 -c "import json,os,subprocess,sys; s=float(sys.argv[2])-float(sys.argv[1]); l=subprocess.run(['ldd','out/bench/condiff-run-static'],capture_output=True,text=True); json.dump({'wasm_seconds_per_image': s/4, 'wasm_images': 4, 'static_bytes': os.path.getsize('out/bench/condiff-run-static'), 'wasm_bytes': os.path.getsize('out/bench/condiff-run.wasm'), 'static_ldd': (l.stdout+l.stderr).strip()}, open('out/bench/portable.json','w'))" "$wasm_start" "$wasm_end"
echo "bench: serve (condiff-run serve under load, about 15 minutes)" >&2
out/bench/bench-openblas -mode serve -serve-bin bin/condiff-run > out/bench/serve.json
echo "bench: per-op profile of a training step (cbn, batch norm)" >&2
out/bench/bench-openblas -mode train -variant cbn_batch -steps 4 -cpuprofile out/bench/train-cpu.prof > /dev/null
go tool pprof -top -nodecount 25 out/bench/bench-openblas out/bench/train-cpu.prof > out/bench/train-profile.txt 2>/dev/null
echo "bench: PyTorch reference" >&2;    /usr/bin/python3 scripts/torch_ref.py "$threads" > out/bench/torch.json
/usr/bin/python3 - "$threads" <<'PY'
import json, os, platform, sys
ld = lambda n: json.load(open("out/bench/" + n + ".json"))
ob, pg, sa, th, rs = ld("train-openblas"), ld("train-purego"), ld("sample"), ld("torch"), ld("train-rss")
own = ld("train-openblas-own") if os.path.exists("out/bench/train-openblas-own.json") else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
out = {"machine": {"cpu": cpu, "threads": int(sys.argv[1]), "openblas_core": ob["blas_core"]}, "train": {}, "sample": {}}
if own:
    out["machine"]["openblas_own_core"] = own["blas_core"]
for v in ("uncond", "cbn_batch", "cbn_group", "ac"):
    k = v + "_img_per_s"
    out["train"][v] = {"openblas_img_per_s": round(ob[k], 2), "purego_img_per_s": round(pg[k], 2),
                       "torch_img_per_s": round(th[k], 2), "openblas_vs_torch": round(ob[k] / th[k], 3),
                       "openblas_vs_purego": round(ob[k] / pg[k], 3),
                       "mb_alloc_per_step": round(ob[v + "_mb_alloc_per_step"], 1),
                       "allocs_per_step": round(ob[v + "_allocs_per_step"]),
                       "peak_rss_mb": round(ob[v + "_peak_rss_mb"])}
    if own:  # OpenBLAS's own kernel choice, OPENBLAS_CORETYPE unset
        out["train"][v]["openblas_own_core_img_per_s"] = round(own[k], 2)
        out["train"][v]["openblas_own_core_vs_torch"] = round(own[k] / th[k], 3)
out["train"]["rss_over_500_steps"] = {"config": rs["config"], "rss_mb_every_50_steps": [round(v, 1) for v in rs["rss_mb_every_50_steps"]],
                                      "growth_mb_step50_to_500": round(rs["rss_growth_mb_step50_to_500"], 1)}
for b in (1, 16, 64):
    s, t = sa["batch%d" % b], th["sample_batch%d" % b]
    out["sample"]["ddim50_batch%d" % b] = {"ort_evals_per_s": round(s["denoiser_evals_per_s"], 1),
        "ort_images_per_s": round(s["images_per_s"], 3), "frac_outside_run": round(s["frac_outside_run"], 4),
        "torch_evals_per_s": round(t["denoiser_evals_per_s"], 1), "ort_vs_torch": round(s["denoiser_evals_per_s"] / t["denoiser_evals_per_s"], 3)}
out["sample"]["peak_rss_mb"] = {"n64": round(sa["peak_rss_mb_n64"], 1), "n4096": round(sa["peak_rss_mb_n4096"], 1)}
out["serve"] = ld("serve")
out["backends"] = ld("backends")
out["backends"]["portable"] = ld("portable")
out["gemm"] = ld("gemm")
out["students"] = {n: ld("students-" + n) for n in ("mnist", "fashion", "mnist-every", "fashion-every", "mnist-2step", "fashion-2step")}
json.dump(out, open("out/bench.json", "w"), indent=2)
print(json.dumps(out, indent=2))
PY
