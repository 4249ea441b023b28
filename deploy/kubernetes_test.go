package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// objects is what one manifest file holds, parsed strictly by kind into
// Kubernetes' own API types (an unknown or misspelled field is an error).
type objects struct {
	jobs        []batchv1.Job
	deployments []appsv1.Deployment
	services    []corev1.Service
	claims      []corev1.PersistentVolumeClaim
}

func parseManifests(t *testing.T, path string) objects {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o objects
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		strict := func(v any) {
			if err := yaml.UnmarshalStrict(doc, v); err != nil {
				t.Fatalf("%s: document %d (%s): %v", path, i, head.Kind, err)
			}
		}
		switch head.APIVersion + " " + head.Kind {
		case "batch/v1 Job":
			var j batchv1.Job
			strict(&j)
			o.jobs = append(o.jobs, j)
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			strict(&d)
			o.deployments = append(o.deployments, d)
		case "v1 Service":
			var s corev1.Service
			strict(&s)
			o.services = append(o.services, s)
		case "v1 PersistentVolumeClaim":
			var c corev1.PersistentVolumeClaim
			strict(&c)
			o.claims = append(o.claims, c)
		default:
			t.Fatalf("%s: document %d: %s %s is not a kind this test checks", path, i, head.APIVersion, head.Kind)
		}
	}
	return o
}

// checkPod checks what every pod of the recipes must be: the image `make
// image` names, condiff-run flags that exist, volumes that are defined,
// the image's non-root user, and absolute paths that lie in the image or
// under a mount. It returns the container's mounts (path -> volume).
func checkPod(t *testing.T, where string, spec corev1.PodSpec, im *builtImage, claims []corev1.PersistentVolumeClaim) map[string]corev1.Volume {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", where, len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != "condiff-run:latest" {
		t.Errorf("%s: image %q; `make image` names it condiff-run (condiff-run:latest once loaded)", where, c.Image)
	}
	if len(c.Command) != 0 {
		t.Errorf("%s: command %q replaces the image's entrypoint", where, c.Command)
	}
	checkArgs(t, where, c.Args)
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil ||
		strconv.FormatInt(*sc.RunAsUser, 10) != strings.Split(im.config.Config.User, ":")[0] {
		t.Errorf("%s: securityContext %+v; want runAsNonRoot and the image's user %s", where, sc, im.config.Config.User)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		if pvc := v.PersistentVolumeClaim; pvc != nil {
			found := false
			for _, cl := range claims {
				found = found || cl.Name == pvc.ClaimName
			}
			if !found {
				t.Errorf("%s: volume %s claims %q, which the file does not define", where, v.Name, pvc.ClaimName)
			}
		}
	}
	mounts := map[string]corev1.Volume{}
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			t.Errorf("%s: mount %s of undefined volume %q", where, m.MountPath, m.Name)
		}
		mounts[m.MountPath] = v
	}
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "/") {
			continue
		}
		inImage := false
		if _, err := os.Stat(filepath.Join(im.root, a)); err == nil {
			inImage = true
		}
		under := false
		for p := range mounts {
			under = under || a == p || strings.HasPrefix(a, p+"/")
		}
		if !inImage && !under {
			t.Errorf("%s: %s is neither in the image nor under a volume mount", where, a)
		}
	}
	return mounts
}

// TestKubernetesJob: deploy/kubernetes/sample-job.yaml parses strictly as
// Kubernetes' types, its pods are right for the image, and its container
// runs as written (paths mapped onto this machine, fewer images): indices
// 3 and 5 make their shards, and index 3 run again, as a replacement pod
// would, exits 0 at once.
func TestKubernetesJob(t *testing.T) {
	const path = "kubernetes/sample-job.yaml"
	im := buildImage(t)
	o := parseManifests(t, path)
	if len(o.jobs) != 1 || len(o.claims) != 1 {
		t.Fatalf("%s: %d jobs, %d claims", path, len(o.jobs), len(o.claims))
	}
	j := o.jobs[0]
	if j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion || j.Spec.Completions == nil {
		t.Fatalf("%s: not an Indexed Job with completions", path)
	}
	if j.Spec.BackoffLimitPerIndex == nil || *j.Spec.BackoffLimitPerIndex < 1 {
		t.Errorf("%s: no backoffLimitPerIndex: a failed pod's index is not retried", path)
	}
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("%s: restartPolicy %q; backoffLimitPerIndex needs Never", path, j.Spec.Template.Spec.RestartPolicy)
	}
	mounts := checkPod(t, path, j.Spec.Template.Spec, im, o.claims)
	args := j.Spec.Template.Spec.Containers[0].Args
	n := int(*j.Spec.Completions)
	if got := flagValue(args, "shard"); got != fmt.Sprintf("auto/%d", n) {
		t.Errorf("%s: --shard %q; want auto/%d (the Job's completions)", path, got, n)
	}
	for p, v := range mounts {
		if v.PersistentVolumeClaim == nil {
			t.Errorf("%s: %s is not a persistent volume: the shards' images would be lost", path, p)
		}
	}
	out := flagValue(args, "out")
	roots := map[string]string{"/models": filepath.Join(im.root, "models")}
	for p := range mounts {
		roots[p] = filepath.Join(t.TempDir(), "volume")
	}
	run := func(index int) string {
		cmd := exec.Command(filepath.Join(im.root, "usr/local/bin/condiff-run"), append(remap(args, roots), "--n", "4", "--steps", "2")...)
		cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX="+strconv.Itoa(index))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("index %d: %v\n%s", index, err, b)
		}
		return string(b)
	}
	run(3)
	run(5)
	if log := run(3); !strings.Contains(log, "already done") {
		t.Errorf("index 3 again (a replacement pod):\n%s", log)
	}
	shards := readShards(t, remap([]string{out}, roots)[0])
	for _, k := range []string{fmt.Sprintf("3-of-%d", n), fmt.Sprintf("5-of-%d", n)} {
		if m, ok := shards[k]; !ok || !m.Complete || len(m.Images) != 5 { // 40 images, every 8th
			t.Errorf("shard %s: %+v", k, m)
		}
	}
}

// TestKubernetesServe: deploy/kubernetes/serve.yaml parses strictly; the
// readiness probe, the listen port, the container port and the Service
// agree; and the container's command line runs as written (paths mapped,
// a free port): ready on /healthz by the pod's IP, answering a client
// that calls the Service by name with the token.
func TestKubernetesServe(t *testing.T) {
	const path = "kubernetes/serve.yaml"
	im := buildImage(t)
	o := parseManifests(t, path)
	if len(o.deployments) != 1 || len(o.services) != 1 {
		t.Fatalf("%s: %d deployments, %d services", path, len(o.deployments), len(o.services))
	}
	d, svc := o.deployments[0], o.services[0]
	mounts := checkPod(t, path, d.Spec.Template.Spec, im, nil)
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Ports) != 1 {
		t.Fatalf("%s: %d container ports", path, len(c.Ports))
	}
	port := c.Ports[0]
	if listen := flagValue(c.Args, "listen"); !strings.HasSuffix(listen, ":"+strconv.Itoa(int(port.ContainerPort))) || strings.HasPrefix(listen, "127.") {
		t.Errorf("%s: --listen %q; want every address, port %d", path, listen, port.ContainerPort)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != port.Name {
			t.Errorf("%s: %s probe %+v; want GET /healthz on port %s", path, name, p, port.Name)
		}
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: the Service selects %s=%s, which the pods do not carry", path, k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != port.Name {
		t.Errorf("%s: the Service's target port is not the container's %s", path, port.Name)
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if drain, err := timeDuration(flagValue(c.Args, "drain-timeout")); err != nil || grace == nil || drain >= float64(*grace) {
		t.Errorf("%s: --drain-timeout %s (%v) must end within terminationGracePeriodSeconds %v", path, flagValue(c.Args, "drain-timeout"), err, grace)
	}
	// Run it: the token Secret's file, the model from the image.
	roots := map[string]string{"/models": filepath.Join(im.root, "models")}
	for p, v := range mounts {
		dir := t.TempDir()
		roots[p] = dir
		if v.Secret != nil {
			os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600)
		}
	}
	s := serve(t, filepath.Join(im.root, "usr/local/bin/condiff-run"), append(remap(c.Args, roots), "--listen", "127.0.0.1:0")...)
	if code, b := s.get(t, "/healthz", "Host", "10.1.2.3:8080"); code != 200 {
		t.Errorf("readiness by the pod's IP: %d %s", code, b)
	}
	for _, host := range []string{svc.Name, svc.Name + ".default.svc", svc.Name + ".default.svc.cluster.local"} {
		if code, b := s.get(t, "/v1/models", "Host", host, "Authorization", "Bearer s3cret"); code != 200 {
			t.Errorf("a client calling http://%s/v1/models: %d %s", host, code, b)
		}
	}
}

// timeDuration is a Go duration in seconds.
func timeDuration(s string) (float64, error) {
	d, err := time.ParseDuration(s)
	return d.Seconds(), err
}
