package framework

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"egret/heron/model"
	"egret/heron/statemgr"
	"egret/test/mesosmaster"
	"egret/test/zktest"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/proto"
)

var (
	egretOnce sync.Once
	egretPath string
	egretErr  error
	egretDir  string
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// egretBinary is $EGRET_BIN, or egret built once for this package's tests.
func egretBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("EGRET_BIN"); b != "" {
		return b
	}
	egretOnce.Do(func() {
		egretDir, egretErr = os.MkdirTemp("", "egret-framework-test-")
		if egretErr != nil {
			return
		}
		egretPath = filepath.Join(egretDir, "egret")
		out, err := exec.Command("go", "build", "-o", egretPath, filepath.Join(moduleRoot(), "cmd", "egret")).CombinedOutput()
		if err != nil {
			egretErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if egretErr != nil {
		t.Fatal(egretErr)
	}
	return egretPath
}

// testPackage writes a topology package: word (spout) and count (bolt),
// each of parallelism 2, over `stmgrs` containers.
func testPackage(t *testing.T, dir, name string, stmgrs int) string {
	t.Helper()
	kv := func(k, v string) *model.Config_KeyValue {
		return &model.Config_KeyValue{Key: proto.String(k), Value: proto.String(v)}
	}
	comp := func(n string) *model.Component {
		return &model.Component{Name: proto.String(n), Config: &model.Config{Kvs: []*model.Config_KeyValue{kv("topology.component.parallelism", "2")}}}
	}
	topo := &model.Topology{Id: proto.String(name + "-id"), Name: proto.String(name), State: model.TopologyState_RUNNING.Enum(),
		Spouts:         []*model.Spout{{Comp: comp("word")}},
		Bolts:          []*model.Bolt{{Comp: comp("count")}},
		TopologyConfig: &model.Config{Kvs: []*model.Config_KeyValue{kv("topology.stmgrs", fmt.Sprint(stmgrs))}}}
	defn, err := proto.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := map[string]string{
		name + ".defn": string(defn), name + ".jar": "simulated",
		"heron-conf/heron_internals.yaml": "heron.logging.directory: \"log-files\"\n", "heron-conf/override.yaml": "{}\n",
		"heron-conf/metrics_sinks.yaml": "sinks: []\n", "heron-conf/stateful.yaml": "{}\n", "heron-conf/statemgr.yaml": "{}\n",
	}
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	gz.Close()
	p := filepath.Join(dir, "topology.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mesosCluster is a test master with two agents and the configuration of
// an egret mesos cluster pointing at it.
type mesosCluster struct {
	t      *testing.T
	m      *mesosmaster.Master
	home   string
	egret  string
	target string
	props  []string
	zk     string // ZooKeeper's address when the state is there
	pids   []int  // schedulers seen
}

func newMesosCluster(t *testing.T, launcher mesosmaster.Launcher, master, zkAddr string) *mesosCluster {
	home := t.TempDir()
	c := &mesosCluster{t: t, home: home, egret: egretBinary(t), zk: zkAddr}
	if master == "" {
		c.m = mesosmaster.Start(mesosmaster.Options{Standby: true, Launcher: launcher, Heartbeat: time.Second, Agents: []mesosmaster.Agent{
			// The agents share this host, so their port ranges must not overlap,
			// and stay below the kernel's ephemeral range (32768 and up), which
			// other processes' connections take from; agent-2's are fragmented.
			{ID: "agent-1", Hostname: "host1", Resources: mesosmaster.Resources(8, 16384, 50000, 23000, 23999)},
			{ID: "agent-2", Hostname: "host2", Resources: mesosmaster.Resources(8, 16384, 50000, 24000, 24004, 24100, 24101, 24200, 24999)},
		}})
		t.Cleanup(c.m.Close)
		master = c.m.URL()
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	c.target = "mesos/" + u.Username + "/default"
	c.props = []string{
		"heron.mesos.master.uri=" + master,
		"heron.package.core.uri=file:///releases/heron-core.tar.gz",
		"heron.mesos.egret.uri=file:///dist/egret.tar.gz",
		"heron.uploader.localfs.file.system.directory=" + filepath.Join(home, "uploads"),
		"heron.scheduler.mesos.scheduler.working.directory=" + filepath.Join(home, "fw"),
		"heron.directory.sandbox.java.home=./heron-core/java",
		"heron.mesos.framework.failover.timeout=1h",
		"heron.mesos.relaunch.backoff.min=300ms",
		"heron.mesos.relaunch.backoff.max=2s",
		"heron.mesos.reconciliation.interval=2s",
	}
	if zkAddr == "" {
		c.props = append(c.props, "heron.class.state.manager=org.apache.heron.statemgr.localfs.LocalFileSystemStateManager",
			"heron.statemgr.connection.string=LOCALMODE", "heron.statemgr.root.path="+filepath.Join(home, "state"))
	} else {
		c.props = append(c.props, "heron.class.state.manager=org.apache.heron.statemgr.zookeeper.curator.CuratorStateManager",
			"heron.statemgr.connection.string="+zkAddr, "heron.statemgr.root.path=/egret-test",
			"heron.statemgr.zookeeper.session.timeout.ms=4000")
	}
	t.Cleanup(c.sweep)
	return c
}

func (c *mesosCluster) run(args ...string) (string, string, error) {
	for _, p := range c.props {
		args = append(args, "--config-property", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.egret, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.home)
	cmd.Dir = c.home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (c *mesosCluster) ok(args ...string) string {
	c.t.Helper()
	out, errs, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("egret %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

func (c *mesosCluster) state() statemgr.StateManager {
	var sm statemgr.StateManager
	var err error
	if c.zk == "" {
		sm, err = statemgr.NewLocal(filepath.Join(c.home, "state"))
	} else {
		sm, err = statemgr.NewZK(context.Background(), statemgr.ZKOptions{Servers: []string{c.zk}, Root: "/egret-test", InitTree: true,
			SessionTimeout: 4 * time.Second, ConnectTimeout: 10 * time.Second})
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { sm.Close() })
	return sm
}

// schedulerPid is the pid of the topology's `egret framework`, as its
// status reports it; the sweep ends it if a failed test leaves it behind.
func (c *mesosCluster) schedulerPid(topology string) int {
	c.t.Helper()
	pid := c.status(topology).PID
	if pid > 0 {
		c.pids = append(c.pids, pid)
	}
	return pid
}

// lockPid is the pid in a local lock file (local state only).
func (c *mesosCluster) lockPid(topology string) int {
	b, err := os.ReadFile(filepath.Join(c.home, "state", "locks", topology+"__framework"))
	if err != nil {
		return 0
	}
	var li struct {
		PID int `json:"pid"`
	}
	json.Unmarshal(b, &li)
	return li.PID
}

// sweep ends any scheduler a failed test left behind.
func (c *mesosCluster) sweep() {
	pids := append([]int{c.lockPid("wc")}, c.pids...)
	for _, pid := range pids {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (c *mesosCluster) status(topology string) StatusView {
	c.t.Helper()
	var v StatusView
	out := c.ok("status", c.target, topology, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		c.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return v
}

// awaitStatus polls the scheduler's status (another process: no event to
// wait on) until cond holds.
func (c *mesosCluster) awaitStatus(topology string, cond func(StatusView) bool) StatusView {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := c.status(topology)
		if cond(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func processGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// waitGone waits for a process that is not our child to disappear.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there", pid)
		}
		time.Sleep(50 * time.Millisecond) // no event exists for another session's process
	}
}

func TestMesosTopologyLifecycle(t *testing.T) {
	t.Run("local-state", func(t *testing.T) { lifecycle(t, newMesosCluster(t, nil, "", "")) })
	t.Run("zookeeper-state", func(t *testing.T) { lifecycle(t, newMesosCluster(t, nil, "", zktest.Start(t).Addr())) })
}

func lifecycle(t *testing.T, c *mesosCluster) {
	m := c.m
	pkg := testPackage(t, t.TempDir(), "wc", 2)
	c.ok("submit", c.target, pkg)

	// Three containers (0, 1, 2), one task each, on the two agents.
	if err := m.Wait(ctxFor(t, 20*time.Second), runningN(3)); err != nil {
		t.Fatal(err)
	}
	before := live(m)
	agents := map[string]bool{}
	for _, task := range before {
		agents[task.AgentID] = true
		var td struct {
			Shard         int      `json:"shard"`
			ExecutorFlags []string `json:"executor_flags"`
			URIs          []struct{ URI, Checksum string }
		}
		if err := json.Unmarshal(task.Data, &td); err != nil {
			t.Fatalf("task %s data: %v", task.ID, err)
		}
		if len(td.URIs) != 2 || td.URIs[0].URI != "file:///releases/heron-core.tar.gz" || !strings.HasPrefix(td.URIs[1].Checksum, "sha256:") {
			t.Errorf("task %s URIs = %+v, want the release and the checksummed package", task.ID, td.URIs)
		}
	}
	if len(agents) != 2 {
		t.Errorf("tasks on %v, want both agents", agents)
	}
	sm := c.state()
	fwID := m.Frameworks()[0].ID
	if loc, err := statemgr.SchedulerLocation(context.Background(), sm, "wc"); err != nil || !strings.Contains(loc.GetJobPageLink()[0], fwID) {
		t.Errorf("scheduler location = %v, %v; want one linking framework %s", loc, err, fwID)
	}
	v := c.awaitStatus("wc", func(v StatusView) bool {
		for _, ct := range v.Containers {
			if ct.State != "TASK_RUNNING" {
				return false
			}
		}
		return len(v.Containers) == 3
	})
	if v.FrameworkID != fwID || len(v.Containers) != 3 || v.Containers[1].State != "TASK_RUNNING" || v.Containers[1].Agent == "" || v.Containers[1].Sandbox == "" {
		t.Errorf("status = %+v", v)
	}
	if out := c.ok("status", c.target, "wc"); !strings.Contains(out, before[2].ID) {
		t.Errorf("status table does not show task %s:\n%s", before[2].ID, out)
	}

	// A container's task fails: relaunched after the backoff, others untouched.
	failed := time.Now()
	if err := m.Update(before[2].ID, mesos.TASK_FAILED, "simulated crash"); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxFor(t, 20*time.Second), func(m *mesosmaster.Master) bool {
		l := live(m)
		return l[2].ID != "" && l[2].ID != before[2].ID && l[2].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(failed); d < 300*time.Millisecond {
		t.Errorf("relaunched %v after the failure, want the 300ms backoff first", d)
	}
	before = live(m)

	// The scheduler is SIGKILLed; the next command starts it again: same
	// framework, tasks reconciled, nothing relaunched.
	pid := c.schedulerPid("wc")
	if pid == 0 {
		t.Fatal("no scheduler pid in the lock")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, pid)
	if err := m.Wait(ctxFor(t, 10*time.Second), func(m *mesosmaster.Master) bool { return !m.Frameworks()[0].Connected }); err != nil {
		t.Fatal(err)
	}
	v = c.status("wc")
	if v.FrameworkID != fwID || m.Removed(fwID) {
		t.Errorf("after restart: framework %q (removed %v), want %q kept", v.FrameworkID, m.Removed(fwID), fwID)
	}
	if p := c.schedulerPid("wc"); p == pid || p == 0 {
		t.Errorf("scheduler pid %d after restart (old %d)", p, pid)
	}
	if err := m.Wait(ctxFor(t, 10*time.Second), func(m *mesosmaster.Master) bool { return m.Frameworks()[0].Connected }); err != nil {
		t.Fatal(err)
	}
	if got := live(m); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("tasks changed across the scheduler's restart:\n got %v\nwant %v", got, before)
	}

	// The master fails over: the scheduler follows the redirect to the new leader.
	subs := m.Frameworks()[0].Subscribes
	if err := m.Failover(); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxFor(t, 20*time.Second), func(m *mesosmaster.Master) bool {
		f := m.Frameworks()[0]
		return f.Connected && f.Subscribes > subs
	}); err != nil {
		t.Fatal(err)
	}
	if v := c.status("wc"); v.FrameworkID != fwID || !strings.HasPrefix(v.Master, m.URL()) {
		t.Errorf("after failover: framework %s on %s, want %s on %s", v.FrameworkID, v.Master, fwID, m.URL())
	}

	// restart 1: only container 1's task is replaced.
	c.ok("restart", c.target, "wc", "1")
	if err := m.Wait(ctxFor(t, 20*time.Second), func(m *mesosmaster.Master) bool {
		l := live(m)
		return len(l) == 3 && l[1].ID != before[1].ID && l[1].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if l := live(m); l[0].ID != before[0].ID || l[2].ID != before[2].ID {
		t.Errorf("restart 1 replaced other containers")
	}

	// update to 3 containers: a task for container 3, the plan rewritten.
	c.ok("update", c.target, "wc", "--container-number", "3")
	if err := m.Wait(ctxFor(t, 20*time.Second), runningN(4)); err != nil {
		t.Fatal(err)
	}
	plan, err := statemgr.PackingPlan(context.Background(), sm, "wc")
	if err != nil || len(plan.GetContainerPlans()) != 3 {
		t.Errorf("packing plan after update: %d containers, %v; want 3", len(plan.GetContainerPlans()), err)
	}

	// kill: no task, no framework, no state, no scheduler.
	pid = c.schedulerPid("wc")
	c.ok("kill", c.target, "wc")
	if n := len(live(m)); n != 0 {
		t.Errorf("%d tasks left after kill", n)
	}
	if !m.Removed(fwID) {
		t.Errorf("framework %s not torn down", fwID)
	}
	for _, k := range statemgr.Kinds {
		if names, _ := sm.List(context.Background(), k); len(names) != 0 {
			t.Errorf("state %s after kill: %v", k, names)
		}
	}
	waitGone(t, pid)
}

func TestMesosSubmitMasterDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing answers there now
	c := newMesosCluster(t, nil, addr, "")
	pkg := testPackage(t, t.TempDir(), "wc", 1)
	start := time.Now()
	_, errs, err := c.run("submit", c.target, pkg)
	if err == nil {
		t.Fatal("submit succeeded with no master")
	}
	if !strings.Contains(errs, addr) || !strings.Contains(errs, "did not answer") {
		t.Errorf("submit error %q does not name the master %s", errs, addr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("submit took %v to give up", d)
	}
	sm := c.state()
	for _, k := range statemgr.Kinds {
		if k == statemgr.Locks {
			continue
		}
		if names, _ := sm.List(context.Background(), k); len(names) != 0 {
			t.Errorf("state %s left by a failed submit: %v", k, names)
		}
	}
	if pid := c.lockPid("wc"); pid != 0 && !processGone(pid) {
		t.Errorf("scheduler %d left running", pid)
	}
	if _, err := os.Stat(filepath.Join(c.home, "uploads", "topology.tar.gz")); err == nil {
		t.Errorf("uploaded package left behind")
	}
}

func TestMesosSubmitInputs(t *testing.T) {
	c := newMesosCluster(t, nil, "", "")
	// A spec is built into a package carrying the cluster's heron-conf/.
	out := c.ok("submit", c.target, filepath.Join(moduleRoot(), "examples", "wordcount.yaml"), "--dry-run")
	if !strings.Contains(out, "CONTAINER") || !strings.Contains(out, "PORTS") {
		t.Errorf("dry run printed no plan:\n%s", out)
	}
	if len(c.m.Frameworks()) != 0 {
		t.Errorf("a dry run subscribed a framework")
	}
	// A package without heron-conf/ cannot configure its containers.
	dir := t.TempDir()
	p := testPackage(t, dir, "bare", 1)
	stripConf(t, p)
	_, errs, err := c.run("submit", c.target, p)
	if err == nil || !strings.Contains(errs, "heron-conf") {
		t.Errorf("submit of a package without heron-conf/: %v %q", err, errs)
	}
	_, errs, err = c.run("submit", c.target, filepath.Join(dir, "nothing.zip"))
	if err == nil || !strings.Contains(errs, "nothing.zip") {
		t.Errorf("submit of a .zip: %v %q", err, errs)
	}
}

// stripConf rewrites a package without its heron-conf/ entries.
func stripConf(t *testing.T, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	ogz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(ogz)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.HasPrefix(h.Name, "heron-conf/") {
			continue
		}
		b, _ := io.ReadAll(tr)
		tw.WriteHeader(h)
		tw.Write(b)
	}
	f.Close()
	tw.Close()
	ogz.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
