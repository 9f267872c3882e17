package framework

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestTaskID(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		topo string
		c, a int
	}{{"word-count", 0, 0}, {"my.topo_1", 12, 7}} {
		id := TaskID(tc.topo, tc.c, tc.a, now)
		topo, c, a, ok := ParseTaskID(id)
		if !ok || topo != tc.topo || c != tc.c || a != tc.a {
			t.Errorf("ParseTaskID(%q) = %q, %d, %d, %v; want %q, %d, %d, true", id, topo, c, a, ok, tc.topo, tc.c, tc.a)
		}
	}
	for _, bad := range []string{"", "x", "t.c1.a2", "t.cx.a2.s", "t.c1.b2.s", "t.c-1.a2.s"} {
		if _, _, _, ok := ParseTaskID(bad); ok {
			t.Errorf("ParseTaskID(%q) ok, want not ok", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := Policy{BackoffMin: time.Second, BackoffMax: 10 * time.Second}
	for streak, want := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := p.Backoff(streak); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", streak, got, want)
		}
	}
}

func TestOnStatus(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := Policy{BackoffMin: time.Second, BackoffMax: time.Minute, Stable: time.Minute, Budget: 3, Window: time.Hour}
	active := Container{Index: 1, Phase: PhaseActive, TaskID: "t", AgentID: "ag", Attempt: 2, Running: t0}
	tests := []struct {
		name      string
		c         Container
		task      string
		state     mesos.TaskState
		now       time.Time
		wantPhase Phase
		wantV     Verdict
		wantNB    time.Time
		wantStrk  int
	}{
		{"launched becomes active", Container{Phase: PhaseLaunched, TaskID: "t"}, "t", mesos.TASK_STARTING, t0, PhaseActive, Keep, time.Time{}, 0},
		{"reconciled running is active", Container{Phase: PhaseUnknown, TaskID: "t"}, "t", mesos.TASK_RUNNING, t0, PhaseActive, Keep, time.Time{}, 0},
		{"first failure backs off min", active, "t", mesos.TASK_FAILED, t0.Add(time.Second), PhaseWaiting, Keep, t0.Add(2 * time.Second), 1},
		{"finished counts as failure", active, "t", mesos.TASK_FINISHED, t0.Add(time.Second), PhaseWaiting, Keep, t0.Add(2 * time.Second), 1},
		{"second failure doubles", withStreak(active, 1, t0), "t", mesos.TASK_LOST, t0.Add(time.Second), PhaseWaiting, Keep, t0.Add(3 * time.Second), 2},
		{"stable run resets the streak", withStreak(active, 4, t0), "t", mesos.TASK_FAILED, t0.Add(2 * time.Minute), PhaseWaiting, Keep, t0.Add(2*time.Minute + time.Second), 1},
		{"budget spent gives up", withFailures(active, t0, t0), "t", mesos.TASK_FAILED, t0.Add(time.Second), PhaseGaveUp, Keep, time.Time{}, 1},
		{"old failures fall out of the window", withFailures(active, t0.Add(-2*time.Hour), t0.Add(-2*time.Hour)), "t", mesos.TASK_FAILED, t0.Add(time.Second), PhaseWaiting, Keep, t0.Add(2 * time.Second), 1},
		{"killed for restart relaunches now", Container{Phase: PhaseKilling, Then: ThenRelaunch, TaskID: "t", Streak: 3}, "t", mesos.TASK_KILLED, t0, PhaseWaiting, Keep, time.Time{}, 0},
		{"killed for removal is forgotten", Container{Phase: PhaseKilling, Then: ThenRemove, TaskID: "t"}, "t", mesos.TASK_KILLED, t0, PhaseKilling, Forget, time.Time{}, 0},
		{"killing ignores running", Container{Phase: PhaseKilling, Then: ThenRemove, TaskID: "t"}, "t", mesos.TASK_RUNNING, t0, PhaseKilling, Keep, time.Time{}, 0},
		{"stale running task is killed", active, "old", mesos.TASK_RUNNING, t0, PhaseActive, KillIt, time.Time{}, 0},
		{"stale terminal task is ignored", active, "old", mesos.TASK_FAILED, t0, PhaseActive, Keep, time.Time{}, 0},
		{"unknown after reconciliation relaunches", Container{Phase: PhaseUnknown, TaskID: "t"}, "t", mesos.TASK_UNKNOWN, t0, PhaseWaiting, Keep, t0.Add(time.Second), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, v := OnStatus(tt.c, tt.task, tt.state, "", tt.now, p)
			if got.Phase != tt.wantPhase || v != tt.wantV || !got.NotBefore.Equal(tt.wantNB) || got.Streak != tt.wantStrk {
				t.Errorf("OnStatus = phase %s verdict %d notBefore %v streak %d; want %s %d %v %d",
					got.Phase, v, got.NotBefore, got.Streak, tt.wantPhase, tt.wantV, tt.wantNB, tt.wantStrk)
			}
			if Terminal(tt.state) && tt.task == tt.c.TaskID && got.TaskID != "" {
				t.Errorf("task id %q kept after terminal state", got.TaskID)
			}
		})
	}
}

func withStreak(c Container, n int, running time.Time) Container {
	c.Streak, c.Running = n, running
	return c
}

func withFailures(c Container, ts ...time.Time) Container {
	c.Failures = ts
	return c
}

func TestRestartRemoveReady(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c, kill := Restart(Container{Phase: PhaseGaveUp, Failures: []time.Time{t0}, Streak: 5})
	if kill || c.Phase != PhaseWaiting || c.Streak != 0 || len(c.Failures) != 0 {
		t.Errorf("Restart(gave up) = %+v, kill %v; want waiting with history cleared, no kill", c, kill)
	}
	c, kill = Restart(Container{Phase: PhaseActive, TaskID: "t"})
	if !kill || c.Phase != PhaseKilling || c.Then != ThenRelaunch {
		t.Errorf("Restart(active) = %+v, kill %v; want killing then relaunch", c, kill)
	}
	c, kill = Remove(Container{Phase: PhaseActive, TaskID: "t"})
	if !kill || c.Phase != PhaseKilling || c.Then != ThenRemove {
		t.Errorf("Remove(active) = %+v, kill %v; want killing then remove", c, kill)
	}
	cs := []Container{
		{Index: 0, Phase: PhaseWaiting},
		{Index: 1, Phase: PhaseWaiting, NotBefore: t0.Add(5 * time.Second)},
		{Index: 2, Phase: PhaseWaiting, NotBefore: t0.Add(3 * time.Second)},
		{Index: 3, Phase: PhaseActive, TaskID: "x"},
		{Index: 4, Phase: PhaseUnknown, TaskID: "y", AgentID: "a"},
	}
	ready, next := Ready(cs, t0)
	if len(ready) != 1 || ready[0].Container != 0 || !next.Equal(t0.Add(3*time.Second)) {
		t.Errorf("Ready = %v, %v; want [0], %v", ready, next, t0.Add(3*time.Second))
	}
	if u := Unconfirmed(cs); len(u) != 1 || u["y"] != "a" {
		t.Errorf("Unconfirmed = %v, want map[y:a]", u)
	}
}
