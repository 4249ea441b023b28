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
	needTorch(t)
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
		port := freeAddr(t).Port
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
	if last.Step != 3 || !(last.Loss > 0) { // the step count after the update, as condiff logs it
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

// TestKubernetesTrainJob: kubernetes/train-job.yaml parses strictly into
// Kubernetes' types and holds together: an Indexed Job whose pods (as
// many as torchrun's --nnodes) are named through a headless Service that
// selects them, the rendezvous at pod 0's DNS name on the Service's port,
// the run directory on a ReadWriteMany volume and the config on the mounted
// ConfigMap. Its container command then runs here, once per pod (the
// rendezvous at 127.0.0.1, the paths in a temporary directory), and trains
// the run to its steps.
func TestKubernetesTrainJob(t *testing.T) {
	const path = "kubernetes/train-job.yaml"
	needTorch(t)
	o := parseManifests(t, path)
	if len(o.jobs) != 1 || len(o.services) != 1 || len(o.claims) != 1 {
		t.Fatalf("%s: %d jobs, %d services, %d claims", path, len(o.jobs), len(o.services), len(o.claims))
	}
	j, svc, claim := o.jobs[0], o.services[0], o.claims[0]
	pod := j.Spec.Template.Spec
	if j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != "Indexed" || j.Spec.Completions == nil || j.Spec.Parallelism == nil ||
		*j.Spec.Completions != *j.Spec.Parallelism {
		t.Fatalf("%s: not an Indexed Job running all its pods at once", path)
	}
	n := int(*j.Spec.Completions)
	if svc.Spec.ClusterIP != "None" || pod.Subdomain != svc.Name || svc.Spec.Selector["batch.kubernetes.io/job-name"] != j.Name {
		t.Errorf("%s: the pods are not named through a headless Service that selects them (clusterIP %q, subdomain %q, selector %v)",
			path, svc.Spec.ClusterIP, pod.Subdomain, svc.Spec.Selector)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", path, len(pod.Containers))
	}
	c := pod.Containers[0]
	cmd := c.Command
	arg := func(name string) string {
		for i, a := range cmd {
			if a == name && i+1 < len(cmd) {
				return cmd[i+1]
			}
		}
		return ""
	}
	if len(cmd) == 0 || cmd[0] != "torchrun" || arg("-m") != "condiff_torch.train" {
		t.Fatalf("%s: the command is not torchrun -m condiff_torch.train: %v", path, cmd)
	}
	if arg("--nnodes") != strconv.Itoa(n) {
		t.Errorf("%s: --nnodes %s for %d pods", path, arg("--nnodes"), n)
	}
	port := strconv.Itoa(int(svc.Spec.Ports[0].Port))
	if want := j.Name + "-0." + svc.Name + ":" + port; arg("--rdzv_endpoint") != want {
		t.Errorf("%s: --rdzv_endpoint %s, want pod 0's name %s", path, arg("--rdzv_endpoint"), want)
	}
	mounts := map[string]string{} // mount path → volume
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name:
			volumes[v.Name] = true
		case v.ConfigMap != nil:
			volumes[v.Name] = false
		}
	}
	if len(claim.Spec.AccessModes) != 1 || claim.Spec.AccessModes[0] != "ReadWriteMany" {
		t.Errorf("%s: the run's claim is %v; the pods share it: ReadWriteMany", path, claim.Spec.AccessModes)
	}
	if rw, ok := volumes[mounts[filepath.Dir(arg("--out"))]]; !ok || !rw {
		t.Errorf("%s: --out %s is not on the shared claim", path, arg("--out"))
	}
	if rw, ok := volumes[mounts[filepath.Dir(arg("--config"))]]; !ok || rw {
		t.Errorf("%s: --config %s is not on the ConfigMap", path, arg("--config"))
	}

	// The command, once per pod, here.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "run.json")
	os.WriteFile(cfg, []byte(tinyRun), 0o644)
	local := freeAddr(t).String()
	py, _ := filepath.Abs("../python")
	args := make([]string, len(cmd)-1)
	for i, a := range cmd[1:] {
		switch {
		case a == arg("--rdzv_endpoint"):
			a = local
		case a == arg("--config"):
			a = cfg
		case a == arg("--out"):
			a = filepath.Join(dir, "run")
		}
		args[i] = a
	}
	var procs []*exec.Cmd
	for i := 0; i < n; i++ {
		p := exec.Command("torchrun", args...)
		p.Env = append(os.Environ(), "PYTHONPATH="+py, "OMP_NUM_THREADS=1", "JOB_COMPLETION_INDEX="+strconv.Itoa(i))
		var buf strings.Builder
		p.Stdout, p.Stderr = &buf, &buf
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if t.Failed() {
				t.Logf("pod %d:\n%s", i, buf.String())
			}
		}()
		procs = append(procs, p)
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "run", "log.jsonl"))
	if err != nil || len(strings.Split(strings.TrimSpace(string(b)), "\n")) != 3 {
		t.Errorf("the run's log: %v\n%s", err, b)
	}
}

// needTorch: the torch trainer's tests need python3-torch and its torchrun
// (missing: skipped, and failed under CI=true).
func needTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		need(t, "python3-torch")
	}
	if _, err := exec.LookPath("torchrun"); err != nil {
		need(t, "torchrun (python3-torch)")
	}
}

// freeAddr is a local TCP address free a moment ago, for a rendezvous.
func freeAddr(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr)
}
