package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/heron/container"
	"egret/heron/model"
	"egret/heron/statemgr"
)

func init() {
	register("container", "egret heron-executor against the simulated Heron release", runContainer)
}

// runContainer measures one worker shard (stream manager, metrics manager,
// two instances, heron-shell) run by `egret heron-executor` on the simulated
// release with the local state manager: time until every daemon runs, time
// for a killed instance to run again, and time from SIGTERM to exit.
func runContainer(ctx context.Context, env *Env) ([]Row, error) {
	samples := 7
	if env.Quick {
		samples = 2
	}
	release := filepath.Join(filepath.Dir(env.Egret), "heron-core-sim.tar.gz")
	if _, err := os.Stat(release); err != nil {
		return nil, fmt.Errorf("%w (make sim-release builds it)", err)
	}
	root := filepath.Join(env.Tmp, "container-state")
	sm, err := statemgr.NewLocal(root)
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	res := &model.Resource{Cpu: proto.Float64(1), Ram: proto.Int64(512 << 20), Disk: proto.Int64(1 << 30)}
	inst := func(c string, task int32) *model.InstancePlan {
		return &model.InstancePlan{ComponentName: proto.String(c), TaskId: proto.Int32(task), ComponentIndex: proto.Int32(0), Resource: res}
	}
	if err := statemgr.SetTopology(ctx, sm, &model.Topology{Id: proto.String("wc-id"), Name: proto.String("wc"), State: model.TopologyState_RUNNING.Enum()}); err != nil {
		return nil, err
	}
	if err := statemgr.SetPackingPlan(ctx, sm, "wc", &model.PackingPlan{Id: proto.String("p"), ContainerPlans: []*model.ContainerPlan{
		{Id: proto.Int32(1), RequiredResource: res, InstancePlans: []*model.InstancePlan{inst("word", 1), inst("count", 2)}},
	}}); err != nil {
		return nil, err
	}
	var up, restart, stop []time.Duration
	for i := 0; i < samples; i++ {
		u, r, s, err := containerSample(ctx, env, release, root, i)
		if err != nil {
			return nil, err
		}
		up, restart, stop = append(up, u), append(restart, r), append(stop, s)
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	mu, mr, ms := med(up), med(restart), med(stop)
	return []Row{
		{Figure: "heron-executor: shard with 5 daemons all running (median)", Value: mu.Round(time.Millisecond).String(),
			Floor: "—", Goal: "< 2s", Met: met(mu < 2*time.Second)},
		{Figure: "heron-executor: SIGKILLed instance running again (median)", Value: mr.Round(time.Millisecond).String(),
			Floor: "Heron: 10s fixed delay", Goal: "< 1s", Met: met(mr < time.Second)},
		{Figure: "heron-executor: SIGTERM to exit, 5 daemons stopped (median)", Value: ms.Round(time.Millisecond).String(),
			Floor: "Heron: 5s sleep, no wait", Goal: "< 1s", Met: met(ms < time.Second)},
	}, nil
}

func containerSample(ctx context.Context, env *Env, release, root string, i int) (up, restart, stop time.Duration, err error) {
	dir := filepath.Join(env.Tmp, fmt.Sprintf("container-%d", i))
	if err := os.MkdirAll(filepath.Join(dir, "heron-conf"), 0o755); err != nil {
		return 0, 0, 0, err
	}
	if out, err := exec.CommandContext(ctx, "tar", "-xzf", release, "-C", dir).CombinedOutput(); err != nil {
		return 0, 0, 0, fmt.Errorf("extract %s: %v: %s", release, err, out)
	}
	for name, content := range map[string]string{
		"heron_internals.yaml": "heron.logging.directory: log-files\n", "override.yaml": "{}\n",
		"metrics_sinks.yaml": "{}\n", "stateful.yaml": "{}\n", "statemgr.yaml": "{}\n",
	} {
		os.WriteFile(filepath.Join(dir, "heron-conf", name), []byte(content), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "wc.defn"), []byte("bench"), 0o644)
	os.WriteFile(filepath.Join(dir, "wc.jar"), []byte("bench"), 0o644)
	// Nine distinct ports, free a moment ago (the local scheduler's way).
	ports := make([]string, 9)
	var ls []net.Listener
	for j := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, 0, err
		}
		ls = append(ls, l)
		ports[j] = fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	args := []string{"heron-executor", "--shard=1", "--topology-name=wc", "--topology-id=wc-id", "--topology-defn-file=wc.defn",
		"--state-manager-connection=LOCALMODE", "--state-manager-root=" + root, "--state-manager-config-file=./heron-conf/statemgr.yaml",
		"--tmanager-binary=./heron-core/bin/heron-tmanager", "--stmgr-binary=./heron-core/bin/heron-stmgr",
		"--metrics-manager-classpath=./heron-core/lib/metricsmgr/*", "--instance-jvm-opts=" + container.EncodeJavaOpts(""),
		"--classpath=wc.jar", "--heron-internals-config-file=./heron-conf/heron_internals.yaml",
		"--override-config-file=./heron-conf/override.yaml", "--component-ram-map=word:536870912,count:536870912",
		"--component-jvm-opts=" + container.EncodeJavaOpts(""), "--pkg-type=jar", "--topology-binary-file=wc.jar",
		"--heron-java-home=./heron-core/java", "--heron-shell-binary=./heron-core/bin/heron-shell", "--cluster=local",
		"--role=bench", "--environment=default", "--instance-classpath=./heron-core/lib/instance/*",
		"--metrics-sinks-config-file=./heron-conf/metrics_sinks.yaml", "--scheduler-classpath=./heron-core/lib/scheduler/*",
		"--python-instance-binary=./heron-core/bin/heron-python-instance", "--cpp-instance-binary=./heron-core/bin/heron-cpp-instance",
		"--metricscache-manager-classpath=./heron-core/lib/metricscachemgr/*", "--metricscache-manager-mode=disabled",
		"--is-stateful=false", "--checkpoint-manager-classpath=./heron-core/lib/ckptmgr/*", "--checkpoint-manager-ram=1073741824",
		"--stateful-config-file=./heron-conf/stateful.yaml", "--health-manager-mode=disabled",
		"--health-manager-classpath=./heron-core/lib/healthmgr/*",
		"--scheduler-port=" + ports[0], "--metricscache-manager-server-port=" + ports[1], "--metricscache-manager-stats-port=" + ports[2],
		"--checkpoint-manager-port=" + ports[3], "--server-port=" + ports[4], "--tmanager-controller-port=" + ports[5],
		"--tmanager-stats-port=" + ports[6], "--shell-port=" + ports[7], "--metrics-manager-port=" + ports[8],
	}
	statusPath := filepath.Join(dir, container.StatusFileName(1))
	// The executor is another process: its status file is polled.
	waitFor := func(d time.Duration, pred func(*container.StatusFile) bool) error {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if s, err := container.ReadStatus(statusPath); err == nil && pred(s) {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
		}
		return fmt.Errorf("timed out; see %s", dir)
	}
	cmd := exec.CommandContext(ctx, env.Egret, args...)
	cmd.Dir = dir
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	allUp := func(s *container.StatusFile) bool {
		if len(s.Processes) != 5 {
			return false
		}
		for _, p := range s.Processes {
			if p.State != "running" {
				return false
			}
		}
		return true
	}
	if err := waitFor(30*time.Second, allUp); err != nil {
		return 0, 0, 0, fmt.Errorf("shard start: %w", err)
	}
	up = time.Since(start)
	s, _ := container.ReadStatus(statusPath)
	var victim int
	for _, p := range s.Processes {
		if p.Name == "container_1_word_1" {
			victim = p.PID
		}
	}
	start = time.Now()
	syscall.Kill(victim, syscall.SIGKILL)
	if err := waitFor(30*time.Second, func(s *container.StatusFile) bool {
		for _, p := range s.Processes {
			if p.Name == "container_1_word_1" {
				return p.State == "running" && p.PID != victim
			}
		}
		return false
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("instance restart: %w", err)
	}
	restart = time.Since(start)
	start = time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		done <- nil
	case <-time.After(30 * time.Second):
		return 0, 0, 0, fmt.Errorf("executor did not exit after SIGTERM")
	}
	stop = time.Since(start)
	return up, restart, stop, nil
}
