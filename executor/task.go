package executor

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// task is one launched task. Fields under Executor.mu except where noted.
type task struct {
	info     mesos.TaskInfo
	terminal bool
	killing  bool
	last     mesos.TaskStatus // the last status sent, copied into health updates

	killMu    sync.Mutex
	killGrace time.Duration // the shortest grace asked for so far
	killAt    time.Time     // when that request came
	killed    bool          // a kill was asked
	killSig   chan struct{} // signalled on each kill request (cap 1)
}

// outcome is how a task's processes ended.
type outcome struct {
	state   mesos.TaskState
	reason  *mesos.TaskStatus_Reason
	message string
	healthy *bool
}

// runner runs the processes of one kind of task.
type runner interface {
	// run starts the task's processes, reports RUNNING and health through tc, and returns
	// when every process of the task is gone. It stops them when tc.kills signals.
	run(ctx context.Context, tc *taskControl) outcome
}

// taskControl is what a runner sees of the executor.
type taskControl struct {
	e *Executor
	t *task
	// Dir is the task's own directory in the sandbox (its logs live there).
	Dir string
}

// ID returns the task's id.
func (tc *taskControl) ID() string { return tc.t.info.TaskID.Value }

// Info returns the task as launched.
func (tc *taskControl) Info() *mesos.TaskInfo { return &tc.t.info }

// Kills is signalled on every kill request; KillDeadline says when force is due.
func (tc *taskControl) Kills() <-chan struct{} { return tc.t.killSig }

// KillDeadline returns when the task's processes must be forced (SIGKILL), and whether a
// kill was asked at all.
func (tc *taskControl) KillDeadline() (time.Time, bool) {
	tc.t.killMu.Lock()
	defer tc.t.killMu.Unlock()
	return tc.t.killAt.Add(tc.t.killGrace), tc.t.killed
}

// Running reports TASK_RUNNING.
func (tc *taskControl) Running(message string) {
	tc.e.update(tc.t, statusOpts{state: mesos.TASK_RUNNING, message: message})
}

// Health reports a health-check result change: RUNNING with healthy and
// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, the rest copied from the last status.
func (tc *taskControl) Health(healthy bool, message string) {
	tc.e.update(tc.t, statusOpts{health: &healthy, message: message})
}

// Sandbox is the executor's sandbox.
func (tc *taskControl) Sandbox() string { return tc.e.cfg.Sandbox }

// Env is the environment tasks start from.
func (tc *taskControl) Env() []string { return tc.e.cfg.ChildEnv }

// Logf logs a line about the task.
func (tc *taskControl) Logf(format string, args ...any) {
	tc.e.log.Printf("task %s: %s", tc.ID(), fmt.Sprintf(format, args...))
}

// statusOpts describes one update.
type statusOpts struct {
	state   mesos.TaskState
	reason  *mesos.TaskStatus_Reason
	message string
	health  *bool // a health update: RUNNING with this healthy, last status copied
	healthy *bool // healthy on a terminal update
}

// isTerminal reports Mesos' terminal states.
func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// update queues a status update for t with a fresh UUID. Nothing is sent after a task's
// terminal update, and a health update only follows RUNNING.
func (e *Executor) update(t *task, o statusOpts) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.terminal {
		return
	}
	var st mesos.TaskStatus
	if o.health != nil {
		if t.last.GetState() != mesos.TASK_RUNNING {
			return // no health report while starting or killing
		}
		st = t.last
		st.Healthy = o.health
		st.Reason = mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum()
		if o.message != "" {
			st.Message = &o.message
		} else {
			st.Message = nil
		}
	} else {
		st = mesos.TaskStatus{
			TaskID: t.info.TaskID,
			State:  o.state.Enum(),
			Reason: o.reason,
		}
		if o.message != "" {
			st.Message = &o.message
		}
		st.Healthy = o.healthy
	}
	now := float64(time.Now().UnixNano()) / 1e9
	st.Timestamp = &now
	st.UUID = newUUID()
	st.Source = mesos.SOURCE_EXECUTOR.Enum()
	st.ExecutorID = &mesos.ExecutorID{Value: e.cfg.ExecutorID}
	st.AgentID = nil // a wrong agent id makes the agent drop the update silently
	t.last = st
	if isTerminal(st.GetState()) {
		t.terminal = true
	}
	e.unacked = append(e.unacked, &pending{update: executor.Call_Update{Status: st}, uuid: string(st.UUID)})
	e.log.Printf("task %s: %s%s", t.info.TaskID.Value, st.GetState(), msgSuffix(st))
	e.kickSender()
	e.notify()
}

func msgSuffix(st mesos.TaskStatus) string {
	s := ""
	if st.Healthy != nil {
		s += fmt.Sprintf(" healthy=%t", *st.Healthy)
	}
	if st.Message != nil {
		s += ": " + *st.Message
	}
	return s
}

// launch starts a task (LAUNCH, or one task of LAUNCH_GROUP).
func (e *Executor) launch(info mesos.TaskInfo) {
	id := info.TaskID.Value
	e.mu.Lock()
	if _, dup := e.tasks[id]; dup {
		e.mu.Unlock()
		e.log.Printf("LAUNCH of task %s, which is already known; ignored", id)
		return
	}
	t := &task{info: info, killSig: make(chan struct{}, 1)}
	e.tasks[id] = t
	e.order = append(e.order, id)
	e.unackedTasks = append(e.unackedTasks, info)
	e.launched = true
	stopping := e.shuttingDown
	e.mu.Unlock()

	e.update(t, statusOpts{state: mesos.TASK_STARTING})
	if stopping {
		e.update(t, statusOpts{state: mesos.TASK_KILLED, message: "the executor is shutting down"})
		return
	}
	r, err := e.runnerFor(&t.info)
	if err != nil {
		e.update(t, statusOpts{state: mesos.TASK_ERROR, reason: mesos.REASON_TASK_INVALID.Enum(), message: err.Error()})
		return
	}
	tc := &taskControl{e: e, t: t, Dir: filepath.Join(e.cfg.Sandbox, "tasks", id)}
	e.tasksWG.Add(1)
	go func() {
		defer e.tasksWG.Done()
		out := r.run(context.Background(), tc)
		e.finish(t, out)
	}()
}

// finish sends the task's one terminal update. A task that was asked to die is KILLED even
// if it exited 0 meanwhile (MESOS-7975).
func (e *Executor) finish(t *task, out outcome) {
	t.killMu.Lock()
	killed := t.killed
	t.killMu.Unlock()
	if killed && out.reason == nil && (out.state == mesos.TASK_FINISHED || out.state == mesos.TASK_FAILED) {
		out.state = mesos.TASK_KILLED
	}
	if !isTerminal(out.state) {
		out.state = mesos.TASK_FAILED
	}
	e.update(t, statusOpts{state: out.state, reason: out.reason, message: out.message, healthy: out.healthy})
}

// runnerFor picks how to run a task: TaskData names a Heron container; otherwise the task's
// command runs.
func (e *Executor) runnerFor(info *mesos.TaskInfo) (runner, error) {
	if len(info.Data) > 0 {
		td, err := ParseTaskData(info.Data)
		if err != nil {
			return nil, err
		}
		return &heronTask{data: td, fetcher: e.opts.Fetcher}, nil
	}
	if info.Command == nil {
		return nil, fmt.Errorf("task %s has neither task data nor a command", info.TaskID.Value)
	}
	return newCommandTask(info)
}

// killGrace picks a kill's grace: the KILL event's policy, else the task's, else the
// default.
func killGrace(event, task *mesos.KillPolicy, def time.Duration) time.Duration {
	for _, p := range []*mesos.KillPolicy{event, task} {
		if p != nil && p.GracePeriod != nil {
			if ns := p.GracePeriod.Nanoseconds; ns >= 0 {
				return time.Duration(ns)
			}
			return 0
		}
	}
	return def
}

// shortenKill applies a new kill request to the current one: the first request sets the
// deadline; a later one may only bring it closer (Mesos' rule, so retries are idempotent).
func shortenKill(cur time.Time, killed bool, now time.Time, grace time.Duration) (time.Time, bool) {
	want := now.Add(grace)
	if !killed || want.Before(cur) {
		return want, true
	}
	return cur, false
}

// kill asks a task to die (KILL). Unknown or finished tasks are ignored: the scheduler
// reconciles.
func (e *Executor) kill(id string, policy *mesos.KillPolicy) {
	e.mu.Lock()
	t := e.tasks[id]
	e.mu.Unlock()
	if t == nil {
		e.log.Printf("KILL for unknown task %s, ignored", id)
		return
	}
	e.requestKill(t, killGrace(policy, t.info.KillPolicy, e.cfg.DefaultKillWait))
}

func (e *Executor) requestKill(t *task, grace time.Duration) {
	e.mu.Lock()
	if t.terminal {
		e.mu.Unlock()
		return
	}
	sendKilling := !t.killing && e.killingCap
	t.killing = true
	e.mu.Unlock()
	t.killMu.Lock()
	deadline, changed := shortenKill(t.killAt.Add(t.killGrace), t.killed, time.Now(), grace)
	if changed {
		now := time.Now()
		t.killAt, t.killGrace, t.killed = now, deadline.Sub(now), true
	}
	t.killMu.Unlock()
	if sendKilling {
		e.update(t, statusOpts{state: mesos.TASK_KILLING})
	}
	if changed {
		select {
		case t.killSig <- struct{}{}:
		default:
		}
	}
}

// killAll kills every task with at most grace.
func (e *Executor) killAll(grace time.Duration) {
	e.mu.Lock()
	var ts []*task
	for _, id := range e.order {
		ts = append(ts, e.tasks[id])
	}
	e.mu.Unlock()
	for _, t := range ts {
		g := killGrace(nil, t.info.KillPolicy, e.cfg.DefaultKillWait)
		if g > grace {
			g = grace
		}
		e.requestKill(t, g)
	}
}

// shutdownKillGrace is the grace tasks get on SHUTDOWN: what is left of the shutdown grace
// once the terminal updates have time to get out (Mesos' command executor keeps 2s).
func (e *Executor) shutdownKillGrace() time.Duration {
	return shutdownKillGrace(e.cfg.ShutdownGrace)
}

func shutdownKillGrace(total time.Duration) time.Duration {
	reserve := 2 * time.Second
	if total < 4*time.Second {
		reserve = total / 2
	}
	return total - reserve
}
