package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"egret/test/mesosmaster"

	"go.uber.org/goleak"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

var testNeed = Need{CPUs: 1, MemMB: 512, DiskMB: 100, Ports: 9}

type running struct {
	e    *Engine
	stop context.CancelFunc
	done chan error
}

func (r *running) end(t *testing.T) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrKilled) {
		t.Errorf("Run = %v", err)
	}
}

func startEngine(t *testing.T, m *mesosmaster.Master, store Store, n int, tweak func(*EngineConfig)) *running {
	t.Helper()
	cfg := EngineConfig{
		Masters: m.URLs(), Topology: "wc", Role: "heron", User: "egret", Principal: "egret",
		FailoverTimeout: time.Hour, Store: store,
		Executor: mesos.ExecutorInfo{Command: &mesos.CommandInfo{Value: func(s string) *string { return &s }("./egret executor")}},
		TaskData: func(c Container) ([]byte, error) { return []byte(fmt.Sprintf(`{"container":%d}`, c.Index)), nil },
		Policy:   Policy{BackoffMin: 300 * time.Millisecond, BackoffMax: time.Second, Stable: time.Minute, Budget: 5, Window: time.Minute},
		Refuse:   200 * time.Millisecond, ReconcileRetry: 200 * time.Millisecond, ReconcileInterval: time.Second,
		SubscribeBackoffMax: 300 * time.Millisecond,
	}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{e: e, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	if n > 0 {
		needs := map[int]Need{}
		for i := 0; i < n; i++ {
			needs[i] = testNeed
		}
		if err := e.SetContainers(ctxT(t), needs); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// live returns the master's non-terminal tasks by container.
func live(m *mesosmaster.Master) map[int]mesosmaster.Task {
	out := map[int]mesosmaster.Task{}
	for _, t := range m.Tasks() {
		if t.State == mesos.TASK_RUNNING || t.State == mesos.TASK_STAGING || t.State == mesos.TASK_STARTING {
			_, c, _, _ := ParseTaskID(t.ID)
			out[c] = t
		}
	}
	return out
}

func runningN(n int) func(*mesosmaster.Master) bool {
	return func(m *mesosmaster.Master) bool {
		l := live(m)
		if len(l) != n {
			return false
		}
		for _, t := range l {
			if t.State != mesos.TASK_RUNNING {
				return false
			}
		}
		return true
	}
}

func waitEngine(t *testing.T, e *Engine, what string, cond func(Snapshot) bool) {
	t.Helper()
	if err := e.Wait(ctxT(t), cond); err != nil {
		t.Fatalf("engine: %s: not reached (%v); status %+v", what, err, e.Status())
	}
}

func twoAgents() []mesosmaster.Agent {
	return []mesosmaster.Agent{
		{ID: "agent-1", Hostname: "host1", Resources: mesosmaster.Resources(2, 2048, 10000, 31000, 31099)},
		{ID: "agent-2", Hostname: "host2", Resources: mesosmaster.Resources(2, 2048, 10000, 31000, 31099)},
	}
}

func TestEngineLaunchesOneTaskPerContainerOnTwoAgents(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	r := startEngine(t, m, &MemoryStore{}, 3, nil)
	defer r.end(t)
	if err := m.Wait(ctxT(t), runningN(3)); err != nil {
		t.Fatal(err)
	}
	agents := map[string]int{}
	executors := map[string]bool{}
	for c, task := range live(m) {
		agents[task.AgentID]++
		if task.ExecutorID != ExecutorID(task.ID) || executors[task.ExecutorID] {
			t.Errorf("container %d: executor %q, want its own %q", c, task.ExecutorID, ExecutorID(task.ID))
		}
		executors[task.ExecutorID] = true
		if string(task.Data) != fmt.Sprintf(`{"container":%d}`, c) {
			t.Errorf("container %d: data %q", c, task.Data)
		}
	}
	if agents["agent-1"] != 2 || agents["agent-2"] != 1 {
		t.Errorf("tasks per agent = %v, want 2 on agent-1 (2 cpus) and 1 on agent-2", agents)
	}
	// Nothing waits any more: offers are suppressed.
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		fs := m.Frameworks()
		return len(fs) == 1 && fs[0].Suppressed
	}); err != nil {
		t.Fatal(err)
	}
	fs := m.Frameworks()
	if fs[0].Info.GetRole() != "heron" || fs[0].Info.GetPrincipal() != "egret" || !fs[0].Info.GetCheckpoint() || fs[0].Info.GetFailoverTimeout() != 3600 {
		t.Errorf("FrameworkInfo = %+v, want role heron, principal egret, checkpoint, failover 3600", fs[0].Info)
	}
}

func TestEngineWaitsForLargeEnoughOffers(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: []mesosmaster.Agent{
		{ID: "small", Hostname: "small", Resources: mesosmaster.Resources(0.5, 4096, 10000, 31000, 31099)},
	}})
	defer m.Close()
	r := startEngine(t, m, &MemoryStore{}, 1, nil)
	defer r.end(t)
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool { return m.Calls(scheduler.Call_DECLINE) >= 2 }); err != nil {
		t.Fatal(err)
	}
	if n := len(m.Tasks()); n != 0 {
		t.Fatalf("%d tasks launched on an offer too small", n)
	}
	if m.Frameworks()[0].Suppressed {
		t.Errorf("suppressed while a container waits")
	}
	m.AddAgent(mesosmaster.Agent{ID: "fragmented", Hostname: "big", Resources: mesosmaster.Resources(4, 4096, 10000, 40000, 40002, 41000, 41001, 42000, 42010)})
	if err := m.Wait(ctxT(t), runningN(1)); err != nil {
		t.Fatal(err)
	}
	task := live(m)[0]
	if task.AgentID != "fragmented" {
		t.Fatalf("task on %s, want the large agent", task.AgentID)
	}
	var got []uint64
	for _, res := range task.Resources {
		if res.Name == "ports" {
			for _, rg := range res.Ranges.Range {
				for p := rg.Begin; p <= rg.End; p++ {
					got = append(got, p)
				}
			}
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	want := []uint64{40000, 40001, 40002, 41000, 41001, 42000, 42001, 42002, 42003}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ports = %v, want %v (from three fragments)", got, want)
	}
	waitEngine(t, r.e, "container active", func(s Snapshot) bool { return len(s.Containers) == 1 && s.Containers[0].Phase == PhaseActive })
	c := r.e.Status().Containers[0]
	if fmt.Sprint(c.Ports) != fmt.Sprint(want) {
		t.Errorf("container ports = %v, want %v", c.Ports, want)
	}
}

func TestEngineRelaunchesFailedTaskWithBackoff(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	r := startEngine(t, m, &MemoryStore{}, 2, nil)
	defer r.end(t)
	if err := m.Wait(ctxT(t), runningN(2)); err != nil {
		t.Fatal(err)
	}
	first := live(m)[1]
	other := live(m)[0]
	// Nothing waits: offers are suppressed, and revived for the relaunch.
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool { return m.Frameworks()[0].Suppressed }); err != nil {
		t.Fatal(err)
	}
	revives := m.Calls(scheduler.Call_REVIVE)
	failedAt := time.Now()
	if err := m.Update(first.ID, mesos.TASK_FAILED, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		l := live(m)
		return l[1].ID != "" && l[1].ID != first.ID && l[1].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(failedAt); d < 300*time.Millisecond {
		t.Errorf("relaunched after %v, want at least the 300ms backoff", d)
	}
	second := live(m)[1]
	if m.Calls(scheduler.Call_REVIVE) <= revives {
		t.Errorf("relaunched without REVIVE after suppressing offers")
	}
	if _, _, a, _ := ParseTaskID(second.ID); a != 2 {
		t.Errorf("relaunched task %s, want attempt 2", second.ID)
	}
	if live(m)[0].ID != other.ID {
		t.Errorf("container 0 was relaunched too")
	}
	// The second failure waits twice as long.
	failedAt = time.Now()
	if err := m.Update(second.ID, mesos.TASK_LOST, "agent gone"); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		l := live(m)
		return l[1].ID != "" && l[1].ID != second.ID && l[1].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(failedAt); d < 600*time.Millisecond {
		t.Errorf("second relaunch after %v, want at least 600ms", d)
	}
}

func TestEngineGivesUpAfterBudget(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	r := startEngine(t, m, &MemoryStore{}, 1, func(c *EngineConfig) {
		c.Policy = Policy{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Stable: time.Minute, Budget: 3, Window: time.Minute}
	})
	defer r.end(t)
	for i := 0; i < 3; i++ {
		if err := m.Wait(ctxT(t), runningN(1)); err != nil {
			t.Fatal(err)
		}
		if err := m.Update(live(m)[0].ID, mesos.TASK_FAILED, "boom"); err != nil {
			t.Fatal(err)
		}
	}
	waitEngine(t, r.e, "gave up", func(s Snapshot) bool { return len(s.Containers) == 1 && s.Containers[0].Phase == PhaseGaveUp })
	if n := len(live(m)); n != 0 {
		t.Errorf("%d tasks after giving up", n)
	}
	// restart starts over.
	if err := r.e.Restart(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), runningN(1)); err != nil {
		t.Fatal(err)
	}
}

func TestEngineFailoverKeepsFrameworkAndTasks(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents(), Standby: true})
	defer m.Close()
	store := &MemoryStore{}
	r := startEngine(t, m, store, 3, nil)
	if err := m.Wait(ctxT(t), runningN(3)); err != nil {
		t.Fatal(err)
	}
	before := live(m)
	fwID := m.Frameworks()[0].ID

	// The scheduler dies (its context ends: no teardown) and a new one starts
	// from the same store.
	r.end(t)
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool { return !m.Frameworks()[0].Connected }); err != nil {
		t.Fatal(err)
	}
	reconciles := m.Calls(scheduler.Call_RECONCILE)
	r = startEngine(t, m, store, 0, nil)
	waitEngine(t, r.e, "reconciled after restart", func(s Snapshot) bool { return s.Subscribed && s.Reconciled })
	if s := r.e.Status(); s.FrameworkID != fwID {
		t.Errorf("framework id after restart = %q, want %q", s.FrameworkID, fwID)
	}
	if m.Calls(scheduler.Call_RECONCILE) <= reconciles {
		t.Errorf("no RECONCILE after re-subscribing")
	}
	if got := live(m); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("tasks changed across the scheduler restart:\n got %v\nwant %v", got, before)
	}

	// The master fails over: the scheduler follows the new leader.
	if err := m.Failover(); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		fs := m.Frameworks()
		return len(fs) == 1 && fs[0].Connected && fs[0].Subscribes >= 3
	}); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, r.e, "reconciled after failover", func(s Snapshot) bool { return s.Subscribed && s.Reconciled })
	if s := r.e.Status(); s.FrameworkID != fwID || s.Master != m.URL()+"/api/v1/scheduler" {
		t.Errorf("after failover: framework %q on %q, want %q on %q", s.FrameworkID, s.Master, fwID, m.URL()+"/api/v1/scheduler")
	}
	// Still in charge: a failure is relaunched through the new master.
	if err := m.Update(before[2].ID, mesos.TASK_FAILED, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		l := live(m)
		return len(l) == 3 && l[2].ID != before[2].ID && l[2].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if got := live(m); got[0].ID != before[0].ID || got[1].ID != before[1].ID {
		t.Errorf("containers 0 and 1 were relaunched by the failover")
	}
	r.end(t)
}

func TestEngineRecoversTaskLaunchedButUnknown(t *testing.T) {
	// A record that names a task the master never heard of (the scheduler
	// died between saving and ACCEPT): reconciliation says it is lost and
	// the container is launched again.
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	store := &MemoryStore{}
	if err := store.Save(context.Background(), Record{Containers: []Container{
		{Index: 0, Need: testNeed, Phase: PhaseLaunched, TaskID: "wc.c0.a1.zz", AgentID: "agent-1", Attempt: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	r := startEngine(t, m, store, 0, nil)
	defer r.end(t)
	if err := m.Wait(ctxT(t), runningN(1)); err != nil {
		t.Fatal(err)
	}
	if id := live(m)[0].ID; id == "wc.c0.a1.zz" {
		t.Errorf("task id reused")
	}
}

func TestEngineRestartUpdateKill(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	r := startEngine(t, m, &MemoryStore{}, 3, nil)
	if err := m.Wait(ctxT(t), runningN(3)); err != nil {
		t.Fatal(err)
	}
	before := live(m)

	// restart 1: only container 1 gets a new task.
	if err := r.e.Restart(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		l := live(m)
		return len(l) == 3 && l[1].ID != before[1].ID && l[1].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	after := live(m)
	if after[0].ID != before[0].ID || after[2].ID != before[2].ID {
		t.Errorf("restart 1 touched other containers")
	}
	if err := r.e.Restart(ctxT(t), 7); err == nil {
		t.Errorf("restart of a missing container succeeded")
	}

	// update: containers 0, 1, 3 (2 removed, 3 added).
	if err := r.e.SetContainers(ctxT(t), map[int]Need{0: testNeed, 1: testNeed, 3: testNeed}); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool {
		l := live(m)
		_, has2 := l[2]
		return len(l) == 3 && !has2 && l[3].State == mesos.TASK_RUNNING
	}); err != nil {
		t.Fatal(err)
	}
	if l := live(m); l[0].ID != after[0].ID || l[1].ID != after[1].ID {
		t.Errorf("update relaunched kept containers")
	}

	// kill: every task terminal, framework torn down, Run returns ErrKilled.
	fwID := m.Frameworks()[0].ID
	if err := r.e.Kill(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-r.done; !errors.Is(err, ErrKilled) {
		t.Errorf("Run after kill = %v, want ErrKilled", err)
	}
	r.done <- nil
	if n := len(live(m)); n != 0 {
		t.Errorf("%d tasks left after kill", n)
	}
	if !m.Removed(fwID) {
		t.Errorf("framework %s not torn down", fwID)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if egretDir != "" {
			os.RemoveAll(egretDir)
		}
		if simPath != "" {
			os.RemoveAll(filepath.Dir(simPath))
		}

	}))
}

func TestEngineTriesTheNextMaster(t *testing.T) {
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	r := startEngine(t, m, &MemoryStore{}, 1, func(c *EngineConfig) { c.Masters = []string{down, m.URL()} })
	defer r.end(t)
	if err := m.Wait(ctxT(t), runningN(1)); err != nil {
		t.Fatal(err)
	}
	if s := r.e.Status(); !strings.HasPrefix(s.Master, m.URL()) {
		t.Errorf("master = %s, want %s", s.Master, m.URL())
	}
}

func TestEngineStartsAfreshWhenTheFrameworkWasRemoved(t *testing.T) {
	// The scheduler stays away longer than the failover timeout: Mesos
	// removes the framework and its tasks, and refuses its id. The next
	// scheduler registers a new framework and launches every container again.
	m := mesosmaster.Start(mesosmaster.Options{Agents: twoAgents()})
	defer m.Close()
	store := &MemoryStore{}
	short := func(c *EngineConfig) { c.FailoverTimeout = 50 * time.Millisecond }
	r := startEngine(t, m, store, 2, short)
	if err := m.Wait(ctxT(t), runningN(2)); err != nil {
		t.Fatal(err)
	}
	old := m.Frameworks()[0].ID
	r.end(t)
	if err := m.Wait(ctxT(t), func(m *mesosmaster.Master) bool { return m.Removed(old) && len(live(m)) == 0 }); err != nil {
		t.Fatal(err)
	}
	r = startEngine(t, m, store, 0, short)
	defer r.end(t)
	if err := m.Wait(ctxT(t), runningN(2)); err != nil {
		t.Fatal(err)
	}
	if s := r.e.Status(); s.FrameworkID == old || s.FrameworkID == "" {
		t.Errorf("framework id %q after removal of %q, want a new one", s.FrameworkID, old)
	}
	if rec, _ := store.Load(context.Background()); rec == nil || rec.FrameworkID == old {
		t.Errorf("saved framework id still the removed one")
	}
}
