package framework

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TaskID names attempt `attempt` of a container's task. The stamp keeps ids
// unique over the framework's life even when a lost record makes attempts
// repeat; Mesos expects a task id never to be reused.
func TaskID(topology string, container, attempt int, now time.Time) string {
	return fmt.Sprintf("%s.c%d.a%d.%s", topology, container, attempt, strconv.FormatInt(now.UnixMilli(), 36))
}

// ParseTaskID reverses TaskID. The topology name may itself hold dots, so the
// fields are taken from the right.
func ParseTaskID(id string) (topology string, container, attempt int, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) < 4 {
		return "", 0, 0, false
	}
	n := len(parts)
	c, a := parts[n-3], parts[n-2]
	if !strings.HasPrefix(c, "c") || !strings.HasPrefix(a, "a") {
		return "", 0, 0, false
	}
	ci, err1 := strconv.Atoi(c[1:])
	ai, err2 := strconv.Atoi(a[1:])
	if err1 != nil || err2 != nil || ci < 0 || ai < 0 {
		return "", 0, 0, false
	}
	return strings.Join(parts[:n-3], "."), ci, ai, true
}

// ExecutorID is the executor of a task: one executor per task, so the id
// follows from the task's.
func ExecutorID(taskID string) string { return taskID + ".executor" }

// Phase is where a container is in its life, as the framework sees it.
type Phase string

const (
	// PhaseWaiting: no task; one is launched on a suitable offer once
	// NotBefore has passed.
	PhaseWaiting Phase = "waiting"
	// PhaseLaunched: ACCEPT sent; no status yet.
	PhaseLaunched Phase = "launched"
	// PhaseUnknown: a task recorded before a (re)subscription whose state
	// reconciliation has not confirmed yet.
	PhaseUnknown Phase = "reconciling"
	// PhaseActive: the task is staging, starting or running.
	PhaseActive Phase = "active"
	// PhaseKilling: a kill was sent; what follows its terminal state depends
	// on Then.
	PhaseKilling Phase = "killing"
	// PhaseGaveUp: the relaunch budget ran out; `restart` starts over.
	PhaseGaveUp Phase = "gave-up"
)

// AfterKill says what a killed container does next.
type AfterKill string

const (
	ThenRelaunch AfterKill = "relaunch" // restart
	ThenRemove   AfterKill = "remove"   // update removed the container, or kill
)

// Container is the framework's record of one Heron container.
type Container struct {
	Index    int
	Need     Need
	Phase    Phase
	Then     AfterKill `json:",omitempty"`
	TaskID   string    `json:",omitempty"`
	AgentID  string    `json:",omitempty"`
	Hostname string    `json:",omitempty"`
	Attempt  int
	State    string   `json:",omitempty"` // last Mesos task state seen
	Message  string   `json:",omitempty"` // with the last state
	Ports    []uint32 `json:",omitempty"`
	Sandbox  string   `json:",omitempty"` // the task's sandbox on its agent, when the executor says

	Running   time.Time `json:",omitempty"` // when TASK_RUNNING was first seen for this task
	NotBefore time.Time `json:",omitempty"`
	// Failures are the times of recent unplanned terminations; Streak counts
	// the consecutive ones that backoff grows with.
	Failures []time.Time `json:",omitempty"`
	Streak   int
}

// Policy bounds relaunches.
type Policy struct {
	BackoffMin, BackoffMax time.Duration
	// A task that ran for Stable resets the backoff streak.
	Stable time.Duration
	// Budget failures within Window make the framework give up on a container.
	Budget int
	Window time.Duration
}

// DefaultPolicy: quick first retry, a minute at most between retries, and 10
// failures in 10 minutes to give up.
var DefaultPolicy = Policy{BackoffMin: time.Second, BackoffMax: time.Minute, Stable: 5 * time.Minute, Budget: 10, Window: 10 * time.Minute}

// Backoff is the delay before relaunching after the streak-th consecutive
// failure (1-based): min, 2·min, 4·min … capped at max.
func (p Policy) Backoff(streak int) time.Duration {
	if streak <= 0 {
		return 0
	}
	d := p.BackoffMin
	for i := 1; i < streak && d < p.BackoffMax; i++ {
		d *= 2
	}
	if d > p.BackoffMax {
		d = p.BackoffMax
	}
	return d
}

// Terminal reports whether a Mesos task state ends a task for this framework.
// TASK_UNKNOWN is what reconciliation says of a task the master does not
// know; for us it is gone.
func Terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR, mesos.TASK_LOST,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR, mesos.TASK_UNKNOWN:
		return true
	}
	return false
}

// Verdict is what the engine does after a status update.
type Verdict int

const (
	Keep   Verdict = iota // nothing more to do
	Forget                // drop the container: it was removed and its task is gone
	KillIt                // the status is for a task the container no longer owns; kill it
)

// OnStatus applies a status update for taskID to a container and says what
// follows. Decisions only: the caller sends calls and persists.
func OnStatus(c Container, taskID string, state mesos.TaskState, message string, now time.Time, p Policy) (Container, Verdict) {
	if taskID != c.TaskID {
		if Terminal(state) {
			return c, Keep
		}
		return c, KillIt
	}
	c.State = state.String()
	c.Message = message
	if !Terminal(state) {
		switch c.Phase {
		case PhaseLaunched, PhaseUnknown, PhaseWaiting:
			c.Phase = PhaseActive
		}
		if state == mesos.TASK_RUNNING && c.Running.IsZero() {
			c.Running = now
		}
		return c, Keep
	}
	// The task is over.
	ran := c.Running
	c.TaskID, c.AgentID, c.Hostname, c.Ports, c.Running, c.Sandbox = "", "", "", nil, time.Time{}, ""
	if c.Phase == PhaseKilling {
		switch c.Then {
		case ThenRemove:
			return c, Forget
		default: // a restart asked for this: relaunch at once, no failure counted
			c.Phase, c.Then, c.NotBefore, c.Streak = PhaseWaiting, "", time.Time{}, 0
			return c, Keep
		}
	}
	if !ran.IsZero() && now.Sub(ran) >= p.Stable {
		c.Streak = 0
	}
	c.Streak++
	recent := c.Failures[:0:0]
	for _, f := range c.Failures {
		if now.Sub(f) < p.Window {
			recent = append(recent, f)
		}
	}
	c.Failures = append(recent, now)
	if p.Budget > 0 && len(c.Failures) >= p.Budget {
		c.Phase = PhaseGaveUp
		return c, Keep
	}
	c.Phase = PhaseWaiting
	c.NotBefore = now.Add(p.Backoff(c.Streak))
	return c, Keep
}

// Restart makes a container start again: a task is killed and relaunched
// when its terminal state arrives; a container without a task (waiting or
// given up) is launched at the next offer, with its failure history cleared.
// It reports whether a kill must be sent.
func Restart(c Container) (Container, bool) {
	c.Failures, c.Streak, c.NotBefore = nil, 0, time.Time{}
	if c.TaskID == "" {
		c.Phase, c.Then = PhaseWaiting, ""
		return c, false
	}
	c.Phase, c.Then = PhaseKilling, ThenRelaunch
	return c, true
}

// Remove marks a container for removal. It reports whether a kill must be
// sent; without a task the container can be forgotten at once.
func Remove(c Container) (Container, bool) {
	if c.TaskID == "" {
		return c, false
	}
	c.Phase, c.Then = PhaseKilling, ThenRemove
	return c, true
}

// Ready lists the containers that want an offer now, and the earliest time a
// waiting container becomes ready later (zero if none).
func Ready(cs []Container, now time.Time) (ready []Waiting, next time.Time) {
	for _, c := range cs {
		if c.Phase != PhaseWaiting {
			continue
		}
		if !c.NotBefore.After(now) {
			ready = append(ready, Waiting{Container: c.Index, Need: c.Need})
			continue
		}
		if next.IsZero() || c.NotBefore.Before(next) {
			next = c.NotBefore
		}
	}
	return ready, next
}

// Unconfirmed lists the tasks whose state reconciliation must still confirm,
// as task id → agent id.
func Unconfirmed(cs []Container) map[string]string {
	m := map[string]string{}
	for _, c := range cs {
		if c.Phase == PhaseUnknown && c.TaskID != "" {
			m[c.TaskID] = c.AgentID
		}
	}
	return m
}
