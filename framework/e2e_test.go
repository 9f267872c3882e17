package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"egret/heron/model"
	"egret/heron/statemgr"
	"egret/test/mesosmaster"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

var (
	simOnce sync.Once
	simPath string
	simErr  error
)

// simRelease is $EGRET_SIM_RELEASE, or the simulated release built once.
func simRelease(t *testing.T) string {
	t.Helper()
	if s := os.Getenv("EGRET_SIM_RELEASE"); s != "" {
		return s
	}
	egret := egretBinary(t)
	simOnce.Do(func() {
		dir, err := os.MkdirTemp("", "egret-framework-sim-")
		if err != nil {
			simErr = err
			return
		}
		root := moduleRoot()
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "sim-release.sh"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "EGRET="+egret, "BUILD_DIR="+dir, "COPY_TO=")
		if out, err := cmd.CombinedOutput(); err != nil {
			simErr = fmt.Errorf("sim-release.sh: %v\n%s", err, out)
			return
		}
		simPath = filepath.Join(dir, "heron-core-sim.tar.gz")
	})
	if simErr != nil {
		t.Fatal(simErr)
	}
	return simPath
}

// TestMesosRealExecutors runs a topology end to end: the real `egret
// executor` per task (through test/mesosagent), fetching the simulated
// release and the package, running Heron's daemons until the topology
// manager publishes the physical plan.
func TestMesosRealExecutors(t *testing.T) {
	release := simRelease(t)
	root := t.TempDir()
	x := &mesosmaster.Executors{EgretBin: egretBinary(t), Root: filepath.Join(root, "agents"), ShutdownGrace: 5 * time.Second,
		Env: []string{"EGRET_CACHE_DIR=" + filepath.Join(root, "cache")}}
	c := newMesosCluster(t, x, "", "")
	c.props = append(c.props, "heron.package.core.uri=file://"+release)
	pkg := testPackage(t, t.TempDir(), "wc", 2)
	c.ok("submit", c.target, pkg)

	sm := c.state()
	ctx := ctxFor(t, 90*time.Second)
	if err := c.m.Wait(ctx, runningN(3)); err != nil {
		t.Fatalf("%v\nstatus: %+v", err, c.status("wc"))
	}
	// The physical plan appears once every stream manager has registered
	// with the topology manager: the containers found each other.
	changed, err := sm.Watch(ctx, statemgr.PhysicalPlans, "wc")
	if err != nil {
		t.Fatal(err)
	}
	for {
		pp, err := statemgr.PhysicalPlan(ctx, sm, "wc")
		if err == nil && len(pp.GetStmgrs()) == 2 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			dumpSandboxes(t, x.Root)
			t.Fatalf("no physical plan with 2 stream managers: %v\nstatus: %+v", err, c.status("wc"))
		}
	}
	v := c.status("wc")
	for _, ct := range v.Containers {
		if ct.State != "TASK_RUNNING" {
			t.Errorf("container %d: %s %s", ct.Container, ct.State, ct.Message)
		}
	}
	// update to 3 containers: container 3's task joins, the physical plan follows.
	c.ok("update", c.target, "wc", "--container-number", "3")
	if err := c.m.Wait(ctx, runningN(4)); err != nil {
		t.Fatalf("%v\nstatus: %+v", err, c.status("wc"))
	}
	for {
		pp, err := statemgr.PhysicalPlan(ctx, sm, "wc")
		if err == nil && len(pp.GetStmgrs()) == 3 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			dumpSandboxes(t, x.Root)
			t.Fatalf("no physical plan with 3 stream managers after update: %v\nstatus: %+v", err, c.status("wc"))
		}
	}
	if out := c.ok("list", c.target); !strings.Contains(out, "wc") {
		t.Errorf("list = %q, want wc", out)
	}
	// deactivate and activate reach the topology manager, which rewrites the physical plan.
	for _, step := range []struct {
		cmd  string
		want model.TopologyState
	}{{"deactivate", model.TopologyState_PAUSED}, {"activate", model.TopologyState_RUNNING}} {
		c.ok(step.cmd, c.target, "wc")
		pp, err := statemgr.PhysicalPlan(ctx, sm, "wc")
		if err != nil || pp.GetTopology().GetState() != step.want {
			t.Errorf("after %s: physical plan state %v (%v), want %v", step.cmd, pp.GetTopology().GetState(), err, step.want)
		}
	}
	tasks := live(c.m)
	c.ok("kill", c.target, "wc")
	for _, task := range tasks {
		ex := x.Executor(task.ID)
		if ex == nil {
			t.Fatalf("no executor for %s", task.ID)
		}
		if err := ex.WaitExit(ctx); err != nil && ctx.Err() != nil {
			t.Errorf("executor of %s still running after kill", task.ID)
		}
		if st, _ := ex.TaskState(task.ID); st != mesos.TASK_KILLED {
			t.Errorf("task %s ended %s, want TASK_KILLED", task.ID, st)
		}
	}
	for _, k := range statemgr.Kinds {
		if names, _ := sm.List(context.Background(), k); len(names) != 0 {
			t.Errorf("state %s after kill: %v", k, names)
		}
	}
}

// dumpSandboxes logs the end of every log in the agents' sandboxes.
func dumpSandboxes(t *testing.T, root string) {
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "heron-core") {
			return nil
		}
		if n := d.Name(); n == "stdout" || n == "stderr" || strings.HasSuffix(n, ".stdout") || strings.HasSuffix(n, ".log") || strings.HasSuffix(n, ".log.0") || strings.HasSuffix(n, ".INFO") {
			b, _ := os.ReadFile(p)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("== %s\n%s", p, b)
		}
		return nil
	})
}
