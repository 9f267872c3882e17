package localsched

import (
	"egret/test/zktest"

	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// spec is the word count example's spec (built into a package by submit).
func spec(t *testing.T) string {
	return filepath.Join(moduleRoot(t), "examples", "wordcount.yaml")
}

const wc = "wordcount"

func TestLocalLifecycle(t *testing.T) {
	t.Parallel()
	lifecycle(t, newCluster(t, "local"))
}

// lifecycle runs a topology through every command.
func lifecycle(t *testing.T, c *cluster) {
	out := c.ok("submit", c.name, spec(t))
	c.killOnFailure(wc)
	if !strings.Contains(out, "submitted") {
		t.Errorf("submit printed %q", out)
	}
	st := c.await(wc, "running", running)
	if len(st.Containers) != 4 {
		t.Fatalf("status shows %d containers, want 4 (0 and 3 workers): %+v", len(st.Containers), st.Containers)
	}
	for _, ct := range st.Containers {
		if ct.State != "running" || ct.Pid == 0 || len(processesOf(ct.Processes)) == 0 {
			t.Errorf("container %d: %+v, want a running executor with processes", ct.Container, ct.executorView)
		}
	}
	if out := c.ok("list", c.name); strings.TrimSpace(out) != wc {
		t.Errorf("list = %q, want %q", out, wc)
	}
	c.fails("already exists", "submit", c.name, spec(t))

	c.ok("deactivate", c.name, wc)
	c.await(wc, "paused", func(s TopologyStatus) bool { return s.State == "paused" })
	if out := c.ok("deactivate", c.name, wc); !strings.Contains(out, "already") {
		t.Errorf("a second deactivate printed %q, want a note that it is already deactivated", out)
	}
	c.ok("activate", c.name, wc)
	c.await(wc, "running again", running)

	// Restart one container: a new executor pid, the others untouched.
	before := pids(c.status(wc))
	c.ok("restart", c.name, wc, "1")
	st = c.await(wc, "running after restarting container 1", func(s TopologyStatus) bool {
		p := pids(s)
		return running(s) && p[1] != before[1] && p[1] != 0 && allProcessesRunning(s)
	})
	if p := pids(st); p[2] != before[2] || p[0] != before[0] {
		t.Errorf("restart of container 1 changed other executors: before %v after %v", before, p)
	}

	// Update a parallelism: count 3 → 4 instances.
	c.ok("update", c.name, wc, "--component-parallelism", "count:4")
	c.await(wc, "running with 4 count instances", func(s TopologyStatus) bool {
		return running(s) && countInstances(s, "count") == 4
	})

	// SIGKILL the scheduler: the executors keep running; the next command
	// starts a scheduler that adopts them.
	st = c.status(wc)
	before = pids(st)
	if err := syscall.Kill(st.Scheduler.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	awaitGone(t, st.Scheduler.Pid)
	for ct, pid := range before {
		if syscall.Kill(pid, 0) != nil {
			t.Errorf("container %d's executor %d died with the scheduler", ct, pid)
		}
	}
	st = c.status(wc)
	if st.Scheduler.Pid == 0 || st.Scheduler.Pid == before[-1] {
		t.Errorf("status after the scheduler's death: scheduler %+v", st.Scheduler)
	}
	for _, ct := range st.Containers {
		if !ct.Adopted || ct.Pid != before[ct.Container] {
			t.Errorf("container %d after the scheduler's restart: %+v, want adopted pid %d", ct.Container, ct.executorView, before[ct.Container])
		}
	}

	// SIGKILL an executor: restarted, its daemons back, the physical plan rewritten.
	victim := before[2]
	syscall.Kill(-victim, syscall.SIGKILL)
	c.await(wc, "running with container 2 restarted", func(s TopologyStatus) bool {
		p := pids(s)
		return running(s) && p[2] != victim && p[2] != 0 && allProcessesRunning(s)
	})

	out = c.ok("kill", c.name, wc)
	if !strings.Contains(out, "killed") {
		t.Errorf("kill printed %q", out)
	}
	c.noProcesses(wc)
	if out := c.ok("list", c.name); strings.TrimSpace(out) != "" {
		t.Errorf("list after kill = %q, want nothing", out)
	}
	c.fails("not running", "status", c.name, wc)
}

func pids(s TopologyStatus) map[int]int {
	m := map[int]int{-1: s.Scheduler.Pid}
	for _, c := range s.Containers {
		m[c.Container] = c.Pid
	}
	return m
}

func allProcessesRunning(s TopologyStatus) bool {
	for _, c := range s.Containers {
		ps := processesOf(c.Processes)
		if c.State != "running" || len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			if p.State != "running" {
				return false
			}
		}
	}
	return true
}

func countInstances(s TopologyStatus, component string) int {
	n := 0
	for _, c := range s.Containers {
		for _, p := range processesOf(c.Processes) {
			if strings.HasPrefix(p.Name, "container_") && strings.Contains(p.Name, "_"+component+"_") && p.State == "running" {
				n++
			}
		}
	}
	return n
}

func awaitGone(t *testing.T, pid int) {
	t.Helper()
	st, err := startTime(pid)
	if err != nil {
		return
	}
	fd := pid
	_ = fd
	if alive(pid, st) {
		if err := waitExit(t.Context(), pid); err != nil {
			t.Fatalf("pid %d did not exit: %v", pid, err)
		}
	}
}

// TestKillHalfGoneState: the scheduler is dead and the packing plan and
// scheduler location are gone; kill still stops everything and cleans up.
func TestKillHalfGoneState(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "local")
	c.ok("submit", c.name, wordCountPackage(t, 3))
	c.killOnFailure(wc)
	st := c.await(wc, "running", running)
	syscall.Kill(st.Scheduler.Pid, syscall.SIGKILL)
	awaitGone(t, st.Scheduler.Pid)
	root := filepath.Join(c.home, ".herondata", "repository", "state", "local")
	for _, n := range []string{"packingplans", "schedulers"} {
		if err := os.Remove(filepath.Join(root, n, wc)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	c.ok("kill", c.name, wc)
	c.noProcesses(wc)
	for _, n := range []string{"topologies", "executionstate", "pplans", "tmanagers"} {
		if _, err := os.Stat(filepath.Join(root, n, wc)); err == nil {
			t.Errorf("%s/%s survived the kill", n, wc)
		}
	}
	// And a kill of nothing at all is a clear error? No: Heron warns and succeeds.
	c.ok("kill", c.name, wc)
}

// TestBadInput: each mistake gets a clear message and leaves nothing behind.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "local")
	dir := t.TempDir()
	badSpec := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badSpec, []byte("name: broken\nspouts:\n  - name: s\n    parallelism: zero\n"), 0o644)
	notPkg := filepath.Join(dir, "junk.tar.gz")
	os.WriteFile(notPkg, []byte("this is not a package"), 0o644)

	c.fails("unknown cluster", "submit", "nowhere", spec(t))
	c.fails("want CLUSTER", "submit", c.name)
	c.fails("no such file", "submit", c.name, filepath.Join(dir, "missing.yaml"))
	c.fails("bad.yaml", "submit", c.name, badSpec)
	c.fails("junk.tar.gz", "submit", c.name, notPkg)
	c.fails("--component-parallelism", "update", c.name, wc, "--component-parallelism", "count")
	c.fails("not running", "activate", c.name, wc)
	c.fails("want KEY=VALUE", "kill", c.name, wc, "--config-property", "oops")
	// A release that cannot be fetched: submit fails naming it, leaving no state.
	c.fails("nope.tar.gz", "submit", c.name, spec(t), "--config-property", "heron.package.core.uri="+filepath.Join(dir, "nope.tar.gz"))
	if out := c.ok("list", c.name); strings.TrimSpace(out) != "" {
		t.Errorf("list after failed submits = %q, want nothing", out)
	}
	if left := processesUnder(c.home); len(left) > 0 {
		t.Errorf("failed commands left processes %v", left)
	}
}

// TestLocalZKLifecycle runs the same lifecycle with the state in a real ZooKeeper.
func TestLocalZKLifecycle(t *testing.T) {
	t.Parallel()
	zk := zktest.Start(t)
	lifecycle(t, newCluster(t, "localzk",
		"heron.statemgr.connection.string="+zk.Addr(),
		"heron.statemgr.root.path=/egret-localsched-test"))
}
