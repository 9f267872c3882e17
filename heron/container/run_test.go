package container

import (
	"context"
	"egret/heron/model"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func wcPlan(id string, c1, c2 []InstancePlan) *Plan {
	return &Plan{ID: id, Containers: []ContainerPlan{{ID: 1, Instances: c1}, {ID: 2, Instances: c2}}}
}

// statusWatch collects a container's status updates.
type statusWatch struct {
	ch chan StatusFile
}

func newStatusWatch() *statusWatch { return &statusWatch{ch: make(chan StatusFile, 1024)} }

func (w *statusWatch) on(s StatusFile) {
	select {
	case w.ch <- s:
	default: // a slow test reader only misses intermediate states
	}
}

// wait returns the first status satisfying pred.
func (w *statusWatch) wait(t *testing.T, what string, d time.Duration, pred func(StatusFile) bool) StatusFile {
	t.Helper()
	timeout := time.After(d)
	var last StatusFile
	for {
		select {
		case s := <-w.ch:
			last = s
			if pred(s) {
				return s
			}
		case <-timeout:
			t.Fatalf("timed out after %s waiting for %s; last status: %+v", d, what, last)
		}
	}
}

func procOf(s StatusFile, name string) (ProcessStatus, bool) {
	for _, p := range s.Processes {
		if p.Name == name {
			return p, true
		}
	}
	return ProcessStatus{}, false
}

func allRunning(s StatusFile, names ...string) bool {
	if len(s.Processes) != len(names) {
		return false
	}
	for _, n := range names {
		p, ok := procOf(s, n)
		if !ok || p.State != "running" || p.PID == 0 {
			return false
		}
	}
	return true
}

func pidsOf(s StatusFile) map[string]int {
	m := map[string]int{}
	for _, p := range s.Processes {
		m[p.Name] = p.PID
	}
	return m
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

type shard struct {
	ports  []int
	dir    string
	status *statusWatch
	cancel context.CancelFunc
	done   chan error
}

// startShard runs one container in-process until the test ends.
func startShard(t *testing.T, release string, n int, conn, root string, extra ...string) *shard {
	t.Helper()
	dir := makeSandbox(t, release, "wc")
	ports := freePorts(t, 9)
	f, err := ParseFlags(shardArgs(n, "wc", conn, root, ports, extra...))
	if err != nil {
		t.Fatal(err)
	}
	sw := newStatusWatch()
	c, err := New(Options{Flags: f, Dir: dir, Host: "127.0.0.1", OnStatus: sw.on})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &shard{ports: ports, dir: dir, status: sw, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *shard) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return after cancel")
	}
}

func (s *shard) log(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "heron-executor-"+filepath.Base(s.dir)+".stdout"))
	return string(b)
}

// testContainerLifecycle: three shards reach a physical plan; a killed
// instance is restarted alone; a plan change restarts the stream manager,
// adds and removes instances and keeps the rest; cancel stops everything.
func testContainerLifecycle(t *testing.T, sm testState) {
	_, release := testBinaries(t)
	conn, root := sm.conn(), sm.root()
	sm.setTopology(t, "wc")
	sm.setPlan(t, "wc", wcPlan("plan-1",
		[]InstancePlan{{"word", 1, 0}, {"count", 3, 0}},
		[]InstancePlan{{"word", 2, 1}, {"count", 4, 1}}))

	s0 := startShard(t, release, 0, conn, root)
	s1 := startShard(t, release, 1, conn, root)
	s2 := startShard(t, release, 2, conn, root)

	s0.status.wait(t, "shard 0 running", 60*time.Second, func(s StatusFile) bool {
		return allRunning(s, "heron-tmanager", "metricsmgr-0", "heron-shell-0")
	})
	before := s1.status.wait(t, "shard 1 running", 60*time.Second, func(s StatusFile) bool {
		return allRunning(s, "stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1")
	})
	before2 := s2.status.wait(t, "shard 2 running", 60*time.Second, func(s StatusFile) bool {
		return allRunning(s, "stmgr-2", "metricsmgr-2", "container_2_word_2", "container_2_count_4", "heron-shell-2")
	})
	pp := sm.waitPhysicalPlan(t, "wc", 60*time.Second, func(pp *model.PhysicalPlan) bool { return len(pp.GetStmgrs()) == 2 })
	if got := strings.Join(stmgrIDs(pp), ","); got != "stmgr-1,stmgr-2" {
		t.Errorf("physical plan stream managers = %s, want stmgr-1,stmgr-2", got)
	}
	if len(pp.GetInstances()) != 4 || pp.GetTopology().GetState() != model.TopologyState_RUNNING {
		t.Errorf("physical plan: %d instances, state %v; want 4, RUNNING", len(pp.GetInstances()), pp.GetTopology().GetState())
	}
	for _, st := range pp.GetStmgrs() {
		if st.GetHostName() != "127.0.0.1" || st.GetPid() == 0 || st.GetShellPort() == 0 {
			t.Errorf("stream manager in the physical plan: %v", st)
		}
	}

	// Deactivate and activate through the tmanager's controller port.
	ctl := fmt.Sprintf("http://127.0.0.1:%d", s0.ports[5])
	if code := httpPost(t, ctl+"/deactivate?topologyid=wrong"); code != 400 {
		t.Errorf("/deactivate with a wrong topology id = %d, want 400", code)
	}
	if code := httpPost(t, ctl+"/deactivate?topologyid=wc-id"); code != 200 {
		t.Errorf("/deactivate = %d, want 200", code)
	}
	sm.waitPhysicalPlan(t, "wc", 30*time.Second, func(pp *model.PhysicalPlan) bool {
		return pp.GetTopology().GetState() == model.TopologyState_PAUSED
	})
	if code := httpPost(t, ctl+"/activate?topologyid=wc-id"); code != 200 {
		t.Errorf("/activate = %d, want 200", code)
	}
	sm.waitPhysicalPlan(t, "wc", 30*time.Second, func(pp *model.PhysicalPlan) bool {
		return pp.GetTopology().GetState() == model.TopologyState_RUNNING
	})
	for _, name := range []string{"stmgr-1", "container_1_word_1", "heron-shell-1"} {
		b, err := os.ReadFile(filepath.Join(s1.dir, name+".pid"))
		if err != nil || strings.TrimSpace(string(b)) == "" {
			t.Errorf("pid file of %s: %q, %v", name, b, err)
		}
	}

	// Kill one instance: only it restarts.
	oldPids := pidsOf(before)
	if err := syscall.Kill(oldPids["container_1_word_1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := s1.status.wait(t, "the killed instance restarted", 30*time.Second, func(s StatusFile) bool {
		p, _ := procOf(s, "container_1_word_1")
		return p.State == "running" && p.Restarts == 1 && p.PID != oldPids["container_1_word_1"]
	})
	for name, pid := range pidsOf(after) {
		if name != "container_1_word_1" && pid != oldPids[name] {
			t.Errorf("%s restarted (pid %d → %d) after killing another instance", name, oldPids[name], pid)
		}
	}
	b, _ := os.ReadFile(filepath.Join(s1.dir, "container_1_word_1.pid"))
	if strings.TrimSpace(string(b)) == "" || strings.TrimSpace(string(b)) == itoa(oldPids["container_1_word_1"]) {
		t.Errorf("pid file not rewritten after restart: %q", b)
	}

	// heron-shell's /killexecutor with an instance id restarts that instance
	// (once the shell answers its health check, it serves).
	before2 = s2.status.wait(t, "heron-shell-2 healthy", 30*time.Second, func(s StatusFile) bool {
		p, _ := procOf(s, "heron-shell-2")
		return p.Health == "healthy"
	})
	resp, err := http.PostForm(fmt.Sprintf("http://127.0.0.1:%d/killexecutor", s2.ports[7]),
		url.Values{"secret": {"wc-id"}, "instance_id_to_restart": {"container_2_word_2"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/killexecutor = %d, want 200", resp.StatusCode)
	}
	old2 := pidsOf(before2)
	s2.status.wait(t, "container_2_word_2 restarted through heron-shell", 30*time.Second, func(s StatusFile) bool {
		p, _ := procOf(s, "container_2_word_2")
		return p.State == "running" && p.Restarts == 1 && p.PID != old2["container_2_word_2"]
	})

	// Change the plan: container 1 loses count_3 and gains word_5.
	oldPids = pidsOf(after)
	sm.setPlan(t, "wc", wcPlan("plan-2",
		[]InstancePlan{{"word", 1, 0}, {"word", 5, 2}},
		[]InstancePlan{{"word", 2, 1}, {"count", 4, 1}}))
	changed := s1.status.wait(t, "shard 1 on the new plan", 60*time.Second, func(s StatusFile) bool {
		return s.PackingPlanID == "plan-2" &&
			allRunning(s, "stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_word_5", "heron-shell-1")
	})
	np := pidsOf(changed)
	if np["stmgr-1"] == oldPids["stmgr-1"] {
		t.Errorf("stmgr-1 kept pid %d across a plan change, want a restart", np["stmgr-1"])
	}
	for _, name := range []string{"metricsmgr-1", "container_1_word_1", "heron-shell-1"} {
		if np[name] != oldPids[name] {
			t.Errorf("%s restarted (pid %d → %d) though its argv did not change", name, oldPids[name], np[name])
		}
	}
	if alive(oldPids["container_1_count_3"]) {
		t.Errorf("removed instance container_1_count_3 (pid %d) still alive", oldPids["container_1_count_3"])
	}
	// The tmanager exits on the plan change; restarted, it writes the plan again.
	sm.waitPhysicalPlan(t, "wc", 60*time.Second, func(pp *model.PhysicalPlan) bool {
		for _, st := range pp.GetStmgrs() {
			if st.GetId() == "stmgr-1" && int(st.GetPid()) == np["stmgr-1"] {
				return len(pp.GetInstances()) == 4
			}
		}
		return false
	})

	// Stopping every shard leaves no daemon behind.
	var all []int
	for _, s := range []*shard{s0, s1, s2} {
		for _, p := range readStatus(t, s).Processes {
			all = append(all, p.PID)
		}
		s.stop(t)
	}
	for _, pid := range all {
		if pid != 0 && alive(pid) {
			t.Errorf("pid %d alive after the container stopped", pid)
		}
	}
}

func readStatus(t *testing.T, s *shard) *StatusFile {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(s.dir, "egret-status-*.json"))
	if len(m) != 1 {
		t.Fatalf("status files in %s: %v", s.dir, m)
	}
	st, err := ReadStatus(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runExecutor runs `egret heron-executor` for one shard as a real process.
func runExecutor(t *testing.T, dir string, args []string) (*exec.Cmd, chan error) {
	t.Helper()
	egret, _ := testBinaries(t)
	cmd := exec.Command(egret, append([]string{"heron-executor"}, args...)...)
	cmd.Dir = dir
	out, err := os.Create(filepath.Join(dir, "executor.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); out.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-done
		done <- err
	})
	return cmd, done
}

// waitStatusFile polls the status file of a separate executor process (no
// event crosses the process boundary).
func waitStatusFile(t *testing.T, path string, d time.Duration, pred func(*StatusFile) bool) *StatusFile {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s, err := ReadStatus(path); err == nil && pred(s) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("timed out waiting for %s; last:\n%s", path, b)
	return nil
}

func testExecutorSIGTERM(t *testing.T, sm testState) {
	_, release := testBinaries(t)
	sm.setTopology(t, "wc")
	sm.setPlan(t, "wc", wcPlan("p", []InstancePlan{{"word", 1, 0}, {"count", 3, 0}}, nil))
	dir := makeSandbox(t, release, "wc")
	// One daemon ignores SIGTERM: it gets SIGKILL after the 3 s grace.
	os.WriteFile(filepath.Join(dir, "heron-sim-faults.txt"), []byte("metricsmgr-1 hang\n"), 0o644)
	cmd, done := runExecutor(t, dir, shardArgs(1, "wc", sm.conn(), sm.root(), freePorts(t, 9), "--health-interval=100ms"))
	st := waitStatusFile(t, filepath.Join(dir, StatusFileName(1)), 60*time.Second, func(s *StatusFile) bool {
		// metricsmgr-1 healthy: its port is bound, so it already ignores SIGTERM.
		p, _ := procOf(*s, "metricsmgr-1")
		return p.Health == "healthy" &&
			allRunning(*s, "stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1")
	})
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("executor exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("executor still running 15 s after SIGTERM (grace 3 s)")
	}
	took := time.Since(start)
	t.Logf("executor stopped %d daemons in %s", len(st.Processes), took)
	if took < 3*time.Second {
		t.Errorf("executor exited %s after SIGTERM, before the hung daemon's 3 s grace", took)
	}
	for _, p := range st.Processes {
		if alive(p.PID) {
			t.Errorf("%s (pid %d) alive after the executor exited", p.Name, p.PID)
		}
	}
	final, err := ReadStatus(filepath.Join(dir, StatusFileName(1)))
	if err != nil || final.State != "stopped" {
		t.Errorf("final status = %+v, %v; want state stopped", final, err)
	}
}

func testCrashLoop(t *testing.T, sm testState) {
	_, release := testBinaries(t)
	sm.setTopology(t, "wc")
	sm.setPlan(t, "wc", wcPlan("p", []InstancePlan{{"word", 1, 0}, {"count", 3, 0}}, nil))
	dir := makeSandbox(t, release, "wc")
	os.WriteFile(filepath.Join(dir, "heron-sim-faults.txt"), []byte("container_1_count_3 crash after=50ms code=3\n"), 0o644)
	_, done := runExecutor(t, dir, shardArgs(1, "wc", sm.conn(), sm.root(), freePorts(t, 9), "--restart-budget=3/1m"))
	var err error
	select {
	case err = <-done:
		done <- err
	case <-time.After(60 * time.Second):
		t.Fatalf("crash-looping executor did not exit")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("executor exit = %v, want a non-zero status", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "heron-executor-1.stdout"))
	log := string(b)
	for _, want := range []string{"container_1_count_3 exited too many times", "container_1_count_3: injected crash, exiting with code 3"} {
		if !strings.Contains(log, want) {
			t.Errorf("executor log lacks %q:\n%s", want, log)
		}
	}
	st, _ := ReadStatus(filepath.Join(dir, StatusFileName(1)))
	if st == nil || st.State != "failed" || !strings.Contains(st.Error, "container_1_count_3") {
		t.Errorf("final status = %+v, want failed naming container_1_count_3", st)
	}
	for _, p := range st.Processes {
		if p.PID != 0 && alive(p.PID) {
			t.Errorf("%s (pid %d) alive after the executor failed", p.Name, p.PID)
		}
	}
}

func TestLifecycleLocal(t *testing.T)       { t.Parallel(); testContainerLifecycle(t, localTestState(t)) }
func TestExecutorSIGTERMLocal(t *testing.T) { t.Parallel(); testExecutorSIGTERM(t, localTestState(t)) }
func TestCrashLoopLocal(t *testing.T)       { t.Parallel(); testCrashLoop(t, localTestState(t)) }

// TestDryRunAsHeronExecutor runs the release's heron-core/bin/heron-executor
// (egret under Heron's name) with --dry-run: it prints the processes as JSON
// and starts none.
func TestDryRunAsHeronExecutor(t *testing.T) {
	_, release := testBinaries(t)
	sm := localTestState(t)
	sm.setTopology(t, "wc")
	sm.setPlan(t, "wc", wcPlan("p", []InstancePlan{{"word", 1, 0}, {"count", 3, 0}}, nil))
	dir := makeSandbox(t, release, "wc")
	cmd := exec.Command("./heron-core/bin/heron-executor", append(shardArgs(1, "wc", sm.conn(), sm.root(), freePorts(t, 9)), "--dry-run")...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("heron-executor --dry-run: %v", err)
	}
	var ps []Process
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatalf("dry-run output is not a JSON process list: %v\n%s", err, out)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
		if p.Dir != dir || len(p.Argv) == 0 || len(p.Env) == 0 {
			t.Errorf("dry-run process %+v lacks dir, argv or env", p)
		}
	}
	if got := strings.Join(names, " "); got != "stmgr-1 metricsmgr-1 container_1_word_1 container_1_count_3 heron-shell-1" {
		t.Errorf("dry-run processes = %s", got)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.pid")); len(m) != 0 {
		t.Errorf("dry-run wrote pid files: %v", m)
	}
}

func TestExecutorRejectsBadFlags(t *testing.T) {
	egret, _ := testBinaries(t)
	tests := []struct {
		args []string
		want string
	}{
		{append(shardArgs(1, "wc", "LOCALMODE", "/nonexistent", freePorts(t, 9)), "--no-such-flag=1"), "unknown flag --no-such-flag"},
		{shardArgs(1, "wc", "LOCALMODE", "/x", freePorts(t, 9))[1:], "missing required flag --shard"},
	}
	for _, tt := range tests {
		cmd := exec.Command(egret, append([]string{"heron-executor"}, tt.args...)...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("egret heron-executor: %v, output %q; want a failure naming %q", err, out, tt.want)
		}
	}
}

func httpPost(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLifecycleZK(t *testing.T)       { t.Parallel(); testContainerLifecycle(t, zkTestState(t)) }
func TestExecutorSIGTERMZK(t *testing.T) { t.Parallel(); testExecutorSIGTERM(t, zkTestState(t)) }
func TestCrashLoopZK(t *testing.T)       { t.Parallel(); testCrashLoop(t, zkTestState(t)) }

// TestUnhealthyShellRestarted: a heron-shell failing /health is restarted
// after three failed checks.
func TestUnhealthyShellRestarted(t *testing.T) {
	t.Parallel()
	_, release := testBinaries(t)
	sm := localTestState(t)
	sm.setTopology(t, "wc")
	sm.setPlan(t, "wc", wcPlan("p", []InstancePlan{{"word", 1, 0}}, nil))
	dir := makeSandbox(t, release, "wc")
	os.WriteFile(filepath.Join(dir, "heron-sim-faults.txt"), []byte("heron-shell-1 unhealthy\n"), 0o644)
	f, err := ParseFlags(shardArgs(1, "wc", sm.conn(), sm.root(), freePorts(t, 9),
		"--health-interval=100ms", "--health-grace=1ms", "--restart-budget=100/1m"))
	if err != nil {
		t.Fatal(err)
	}
	sw := newStatusWatch()
	c, err := New(Options{Flags: f, Dir: dir, Host: "127.0.0.1", OnStatus: sw.on})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	sw.wait(t, "heron-shell-1 unhealthy", 30*time.Second, func(s StatusFile) bool {
		p, _ := procOf(s, "heron-shell-1")
		return p.Health == "unhealthy"
	})
	s := sw.wait(t, "heron-shell-1 restarted for its health", 30*time.Second, func(s StatusFile) bool {
		p, _ := procOf(s, "heron-shell-1")
		return p.Restarts >= 1
	})
	for _, p := range s.Processes {
		if p.Name != "heron-shell-1" && p.Restarts != 0 {
			t.Errorf("%s restarted %d times; only the unhealthy shell should", p.Name, p.Restarts)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "heron-executor-1.stdout"))
	if !strings.Contains(string(b), "heron-shell-1 is unhealthy") {
		t.Errorf("executor log lacks the unhealthy line:\n%s", b)
	}
}
