package deploy

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tinyRun is a checkpoint.RunConfig, as `condiff train --print-config
// --data mnist --size 8 --base 8 --mult 1,2 --groups 4 --norm group
// --cfg-drop 0.1 --batch 4 --steps 3` writes it.
const tinyRun = `{"config": {"kind": "denoiser", "variant": "cbn", "norm": "group", "groups": 4, "channels": 1, "image_size": 8,
  "base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "num_classes": 10,
  "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "null_class": true},
 "schedule": {"kind": "linear", "T": 1000, "beta_start": 0.0001, "beta_end": 0.02},
 "train": {"dataset": "mnist", "steps": 3, "batch": 4, "lr": 0.001, "seed": 1, "norm": "group", "cfg_drop": 0.1,
  "ema_decay": 0.999, "grad_clip": 1, "lr_schedule": "constant"}}`

// TestSlurmTrainScript runs slurm/train.sbatch as Slurm would on two
// nodes: srun (a stand-in here) starts the script's torchrun once per node,
// each with one process, meeting at the first node (c10d rendezvous on
// this machine); the run reaches its steps and rank 0 writes it. Run again,
// the script resumes the run instead of refusing its directory.
func TestSlurmTrainScript(t *testing.T) {
	const script = "slurm/train.sbatch"
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		need(t, "python3-torch")
	}
	if _, err := exec.LookPath("torchrun"); err != nil {
		need(t, "torchrun (python3-torch)")
	}
	b, _ := os.ReadFile(script)
	if !strings.HasPrefix(string(b), "#!/bin/bash\n") || !strings.Contains(string(b), "#SBATCH --nodes=") {
		t.Fatalf("%s: not a batch script for several nodes", script)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	// srun: the script's command once per node, SLURM_NODEID set, all
	// waited for. scontrol: the job's nodes.
	os.WriteFile(filepath.Join(bin, "srun"), []byte(`#!/bin/bash
while [[ $1 == --* ]]; do shift; done
pids=()
for ((n = 0; n < SLURM_JOB_NUM_NODES; n++)); do SLURM_NODEID=$n "$@" & pids+=($!); done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=$?; done; exit $rc
`), 0o755)
	os.WriteFile(filepath.Join(bin, "scontrol"), []byte("#!/bin/bash\necho 127.0.0.1\necho 127.0.0.1\n"), 0o755)
	cfg, out := filepath.Join(dir, "run.json"), filepath.Join(dir, "run")
	os.WriteFile(cfg, []byte(tinyRun), 0o644)
	py, _ := filepath.Abs("../python")
	run := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "CONFIG="+cfg, "OUT="+out,
			"CONDIFF_PY="+py, "NPROC=1", "SLURM_JOB_NUM_NODES=2", "SLURM_JOB_NODELIST=node[1-2]", "SLURM_JOB_ID=7",
			"SLURM_CPUS_PER_TASK=1", "RDZV_PORT="+strconv.Itoa(port))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, b)
		}
		return string(b)
	}
	run()
	lines := func() []string {
		b, err := os.ReadFile(filepath.Join(out, "log.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if l := lines(); len(l) != 3 {
		t.Fatalf("the log has %d steps, want 3", len(l))
	}
	var last struct {
		Step int     `json:"step"`
		Loss float64 `json:"loss"`
	}
	json.Unmarshal([]byte(lines()[2]), &last)
	if last.Step != 2 || !(last.Loss > 0) {
		t.Errorf("last log line %+v", last)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint.pt")); err != nil {
		t.Fatal(err)
	}
	run() // resubmitted: resumes at its last step, trains nothing more
	if l := lines(); len(l) != 3 {
		t.Errorf("after resubmitting, the log has %d steps, want 3", len(l))
	}
}
