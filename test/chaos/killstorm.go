package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

func init() {
	register(scenario{order: 50, name: "kill-storm", timeout: 5 * time.Minute, run: killStorm,
		about: "SIGKILL a random daemon of a local word count once a second for -storm: every daemon back, the physical plan back, no zombie, no leaked fd, RSS steady"})
	register(scenario{order: 60, name: "kill-egret", timeout: 4 * time.Minute, run: killEgret,
		about: "SIGKILL the scheduler daemon, then one executor, of a running local topology: it recovers, and no process outlives its owner"})
}

// upTimeout bounds how long a topology may take to come up or to recover on this
// loaded machine; recovery times themselves are measured in `make bench`.
const upTimeout = 60 * time.Second

// waitUp waits until the topology has all its processes (those of want, or when want
// is empty, a scheduler and at least one executor each with daemons) and a physical
// plan, and returns the layout.
func (t *topo) waitUp(ctx context.Context, want *layout) (layout, error) {
	var l layout
	err := waitFor(ctx, upTimeout, 200*time.Millisecond, func() error {
		// egret status first: it is also what brings a dead scheduler daemon back.
		if err := t.physicalPlan(ctx); err != nil {
			return err
		}
		l = t.snapshot()
		if want != nil {
			if m := l.missing(*want); m != "" {
				return fmt.Errorf("not back: %s", m)
			}
		} else {
			if len(l.scheduler) != 1 {
				return fmt.Errorf("%d scheduler daemons, want 1", len(l.scheduler))
			}
			if len(l.executors) == 0 {
				return fmt.Errorf("no executor")
			}
			for _, e := range l.executors {
				if len(l.daemons[e.PID]) == 0 {
					return fmt.Errorf("executor %d has no daemons", e.PID)
				}
			}
		}
		return nil
	})
	return l, err
}

// physicalPlan checks that the topology's physical plan is written, as egret status
// reports it.
func (t *topo) physicalPlan(ctx context.Context) error {
	st, err := t.status(ctx)
	if err != nil {
		return err
	}
	if !hasPhysicalPlan(st) {
		return fmt.Errorf("egret status shows no physical plan")
	}
	return nil
}

// hasPhysicalPlan reads egret status --json: the topology's state comes from its
// physical plan, so a state of RUNNING or PAUSED means the plan is there.
func hasPhysicalPlan(st map[string]any) bool {
	for _, k := range []string{"state", "topology_state", "State"} {
		if v, ok := st[k].(string); ok {
			v = strings.ToUpper(v)
			return v == "RUNNING" || v == "PAUSED"
		}
	}
	if v, ok := st["physical_plan"].(bool); ok {
		return v
	}
	return false
}

// egretProcs are the long-lived egret processes of a layout: the scheduler and executors.
func (l layout) egretProcs() []procInfo {
	return append(append([]procInfo(nil), l.scheduler...), l.executors...)
}

// usage is one sample of the egret processes' descriptors and memory.
type usage struct {
	fds   map[int]int
	rss   map[int]int64
	kinds map[int]map[string]int // descriptors by kind, at the lowest count
}

func sample(ps []procInfo) usage {
	u := usage{fds: map[int]int{}, rss: map[int]int64{}, kinds: map[int]map[string]int{}}
	for _, p := range ps {
		if n, err := fdCount(p.PID); err == nil {
			u.fds[p.PID] = n
			u.kinds[p.PID] = fdKinds(p.PID)
		}
		if r, err := rssBytes(p.PID); err == nil {
			u.rss[p.PID] = r
		}
	}
	return u
}

// settled samples a few times a second apart and keeps each process's lowest
// figures, so a connection open at one instant is not taken for a leak.
func settled(ctx context.Context, ps []procInfo) usage {
	best := sample(ps)
	for i := 0; i < 4; i++ {
		select {
		case <-ctx.Done():
			return best
		case <-time.After(time.Second):
		}
		u := sample(ps)
		for pid, n := range u.fds {
			if n < best.fds[pid] {
				best.fds[pid] = n
				best.kinds[pid] = u.kinds[pid]
			}
		}
		for pid, r := range u.rss {
			if r < best.rss[pid] {
				best.rss[pid] = r
			}
		}
	}
	return best
}

func killStorm(ctx context.Context, s *scen) error {
	t, err := s.newTopo("local")
	if err != nil {
		return err
	}
	if err := t.submit(ctx); err != nil {
		return err
	}
	defer t.killAndCheck(ctx)
	before, err := t.waitUp(ctx, nil)
	if err != nil {
		return fmt.Errorf("topology not up: %v", err)
	}
	s.logf("up: 1 scheduler, %d executors, %d daemons", len(before.executors), len(before.allDaemons()))

	// Warm-up: one round of kills so that every lazily grown buffer exists before
	// the baseline is taken.
	for _, d := range before.allDaemons() {
		_ = killPid(d)
	}
	if _, err := t.waitUp(ctx, &before); err != nil {
		return fmt.Errorf("after the warm-up round of kills: %v", err)
	}
	base := settled(ctx, before.egretProcs())
	s.logf("baseline after warm-up: %s", describeUsage(before, base))

	// The storm.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.Now().Add(s.opts.stormFor)
	kills := map[string]int{}
	total := 0
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("storm interrupted: %v", ctx.Err())
		case <-tick.C:
		}
		now := t.snapshot()
		ds := now.allDaemons()
		if len(ds) == 0 {
			continue
		}
		d := ds[s.rand.Intn(len(ds))]
		if killPid(d) == nil {
			kills[shortArgv(now.argv[d.PID])]++
			total++
		}
	}
	s.logf("storm: %d SIGKILLs over %v across %d distinct daemons", total, s.opts.stormFor, len(kills))

	after, err := t.waitUp(ctx, &before)
	if err != nil {
		s.failf("after the storm: %v", err)
		return nil
	}
	s.logf("after the storm: every daemon and the physical plan are back")
	for _, p := range before.egretProcs() {
		if now, err := readProc(p.PID); err != nil || now.StartTime != p.StartTime {
			s.failf("egret process %s restarted during the storm of its daemons", shortArgv(before.argv[p.PID]))
		}
	}
	s.checkZombies(after)
	end2 := settled(ctx, before.egretProcs())
	s.logf("at the end: %s", describeUsage(before, end2))
	for _, p := range before.egretProcs() {
		name := shortArgv(before.argv[p.PID])
		if f0, f1 := base.fds[p.PID], end2.fds[p.PID]; f1 > f0+2 {
			s.failf("%s: %d open descriptors after the storm, %d before: a leak (%s)", name, f1, f0, fdGrowth(base.kinds[p.PID], end2.kinds[p.PID]))
		}
		if r0, r1 := base.rss[p.PID], end2.rss[p.PID]; r0 > 0 && float64(r1) > 1.10*float64(r0) {
			s.failf("%s: RSS %d KiB after the storm, %d KiB after warm-up: more than 10%% growth", name, r1>>10, r0>>10)
		}
	}
	return nil
}

// describeUsage prints each egret process's descriptors and RSS.
func describeUsage(l layout, u usage) string {
	var parts []string
	for _, p := range l.egretProcs() {
		parts = append(parts, fmt.Sprintf("%s pid %d: %d fds, %d KiB", procRole(l, p.PID), p.PID, u.fds[p.PID], u.rss[p.PID]>>10))
	}
	return strings.Join(parts, "; ")
}

func procRole(l layout, pid int) string {
	for _, p := range l.scheduler {
		if p.PID == pid {
			return "scheduler"
		}
	}
	return "executor"
}

// checkZombies fails the scenario for any zombie whose parent is one of the topology's
// processes: a child egret (or a daemon) has not reaped.
func (s *scen) checkZombies(l layout) {
	var parents []int
	for _, p := range l.egretProcs() {
		parents = append(parents, p.PID)
	}
	for _, d := range l.allDaemons() {
		parents = append(parents, d.PID)
	}
	for _, z := range zombiesUnder(allProcs(), parents) {
		s.failf("zombie pid %d (%s), child of %s, not reaped", z.PID, z.Comm, shortArgv(l.argv[z.PPID]))
	}
}

// killAndCheck kills the topology with egret kill and checks nothing of it is left.
func (t *topo) killAndCheck(ctx context.Context) {
	// The scenario's own deadline may have passed; the clean-up gets its own.
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if err := t.kill(kctx); err != nil {
		t.s.failf("%v", err)
		return
	}
	// egret kill returns once everything is stopped: anything still there is a leak
	// (given a moment for the kernel to finish tearing exited processes down).
	var left []int
	_ = waitFor(kctx, 2*time.Second, 100*time.Millisecond, func() error {
		left = nil
		for _, pid := range t.s.procs.ours() {
			if t.s.exempt == nil || !t.s.exempt(pid) {
				left = append(left, pid)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left")
		}
		return nil
	})
	if len(left) > 0 {
		sort.Ints(left)
		t.s.failf("after egret kill returned, %d processes still run:%s", len(left), psTree(left))
	} else {
		t.s.logf("after egret kill, no process of the topology is left")
	}
}

func killEgret(ctx context.Context, s *scen) error {
	t, err := s.newTopo("local")
	if err != nil {
		return err
	}
	if err := t.submit(ctx); err != nil {
		return err
	}
	defer t.killAndCheck(ctx)
	before, err := t.waitUp(ctx, nil)
	if err != nil {
		return fmt.Errorf("topology not up: %v", err)
	}
	s.logf("up: 1 scheduler, %d executors, %d daemons", len(before.executors), len(before.allDaemons()))

	// 1. The scheduler daemon: its executors run on, on purpose; any egret command
	// brings it back, and it adopts them.
	sched := before.scheduler[0]
	if err := killPid(sched); err != nil {
		return err
	}
	_ = waitGone(sched.PID, 10*time.Second)
	s.logf("SIGKILLed the scheduler daemon (pid %d)", sched.PID)
	mid := t.snapshot()
	if m := mid.missing(layout{byShard: before.byShard}); m != "" {
		s.failf("with the scheduler dead, processes went with it: %s", m)
	}
	after, err := t.waitUp(ctx, &before)
	if err != nil {
		s.failf("after the scheduler's SIGKILL: %v", err)
		return nil
	}
	if len(after.scheduler) != 1 || after.scheduler[0].PID == sched.PID {
		s.failf("no new scheduler daemon after egret status (have %d)", len(after.scheduler))
	}
	adopted := 0
	for _, e := range before.executors {
		if now, err := readProc(e.PID); err == nil && now.StartTime == e.StartTime {
			adopted++
		}
	}
	s.logf("a new scheduler daemon runs (pid %d); it adopted %d of %d executors", after.scheduler[0].PID, adopted, len(before.executors))
	if adopted != len(before.executors) {
		s.failf("the new scheduler restarted %d running executors instead of adopting them", len(before.executors)-adopted)
	}

	// 2. One executor: its daemons go with it, the scheduler starts a new one.
	victim := after.executors[s.rand.Intn(len(after.executors))]
	owned := after.daemons[victim.PID]
	if err := killPid(victim); err != nil {
		return err
	}
	s.logf("SIGKILLed executor pid %d (%d daemons)", victim.PID, len(owned))
	var orphans []string
	_ = waitFor(ctx, 10*time.Second, 100*time.Millisecond, func() error {
		orphans = nil
		for _, d := range owned {
			if now, err := readProc(d.PID); err == nil && now.StartTime == d.StartTime && now.State != 'Z' {
				orphans = append(orphans, describe(d.PID))
			}
		}
		if len(orphans) > 0 {
			return fmt.Errorf("orphans")
		}
		return nil
	})
	if len(orphans) > 0 {
		s.failf("%d daemons outlived their SIGKILLed executor by 10 s: %s", len(orphans), strings.Join(orphans, "; "))
	} else {
		s.logf("every daemon of the killed executor went with it")
	}
	final, err := t.waitUp(ctx, &before)
	if err != nil {
		s.failf("after the executor's SIGKILL: %v", err)
		return nil
	}
	s.logf("the topology recovered: %d executors, %d daemons, physical plan back", len(final.executors), len(final.allDaemons()))
	s.checkZombies(final)
	return nil
}
