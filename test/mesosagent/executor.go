package mesosagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	exe "egret/executor"
)

// ExecutorSpec describes an executor to launch.
type ExecutorSpec struct {
	FrameworkID string
	ExecutorID  string
	// Capabilities of the framework (e.g. TASK_KILLING_STATE).
	Capabilities []mesos.FrameworkInfo_Capability_Type
	// Checkpoint sets MESOS_CHECKPOINT=1 and, with it, the recovery variables.
	Checkpoint      bool
	RecoveryTimeout time.Duration // default 15 mins
	BackoffMax      time.Duration // default 2 secs (the agent's re-registration timeout)
	ShutdownGrace   time.Duration // default 5 secs
	// Sandbox is the executor's directory (created if missing).
	Sandbox string
	// Wire is "json" to make the executor speak JSON (egret's EGRET_EXECUTOR_WIRE).
	Wire string
	// Token, if set, is the executor's authentication token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN).
	Token string
	// Env adds variables to the executor's environment (after the agent's).
	Env []string
}

// Update is a status update the agent accepted, or generated itself.
type Update struct {
	Status    mesos.TaskStatus
	Generated bool // made by the agent (executor gone, re-registration timeout, ...)
	Duplicate bool // a UUID seen before (a resend)
	Dropped   bool // accepted and acknowledged but dropped (unknown or already terminal task)
}

// Subscription records one SUBSCRIBE the agent accepted.
type Subscription struct {
	Wire                  string
	UnacknowledgedTasks   []string // task ids
	UnacknowledgedUpdates []mesos.TaskStatus
}

// Executor is the agent's side of one executor: its process, stream, tasks and updates.
type Executor struct {
	a    *Agent
	spec ExecutorSpec
	id   string
	fw   string

	token string
	cmd   *exec.Cmd
	pgid  int
	mark  string // the container marker in the executor's environment
	done  chan struct{}

	// under a.mu
	subscribed     bool
	everSubscribed bool
	stream         chan *executor.Event // the open stream's queue; nil when none
	streamClose    chan struct{}
	queued         []*executor.Event // LAUNCH/LAUNCH_GROUP waiting for a subscription
	tasks          map[string]*taskState
	taskOrder      []string
	updates        []Update
	seenUUIDs      map[string]bool
	subs           []Subscription
	messages       [][]byte
	exited         bool
	exitErr        error
	terminating    bool
}

type taskState struct {
	info  mesos.TaskInfo
	state mesos.TaskState
	// terminal is set once a terminal update was accepted.
	terminal bool
}

func key(fw, ex string) string { return fw + "\x00" + ex }

// Launch starts an `egret executor` process with the agent's environment for spec.
func (a *Agent) Launch(spec ExecutorSpec) (*Executor, error) {
	if a.opts.EgretBin == "" {
		return nil, errors.New("mesosagent: Options.EgretBin is not set")
	}
	if spec.FrameworkID == "" || spec.ExecutorID == "" || spec.Sandbox == "" {
		return nil, errors.New("mesosagent: FrameworkID, ExecutorID and Sandbox are required")
	}
	if spec.RecoveryTimeout <= 0 {
		spec.RecoveryTimeout = 15 * time.Minute
	}
	if spec.BackoffMax <= 0 {
		spec.BackoffMax = 2 * time.Second
	}
	if spec.ShutdownGrace <= 0 {
		spec.ShutdownGrace = 5 * time.Second
	}
	if err := os.MkdirAll(spec.Sandbox, 0o755); err != nil {
		return nil, fmt.Errorf("mesosagent: sandbox: %w", err)
	}
	e := newExecutor(a, spec)
	if err := a.register(e); err != nil {
		return nil, err
	}

	stdout, err := os.Create(filepath.Join(spec.Sandbox, "stdout"))
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(spec.Sandbox, "stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd := exec.Command(a.opts.EgretBin, "executor")
	cmd.Dir = spec.Sandbox
	cmd.Env = append(os.Environ(), e.environment()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.mu.Lock()
		delete(a.executors, key(e.fw, e.id))
		a.mu.Unlock()
		return nil, fmt.Errorf("mesosagent: start %s: %w", a.opts.EgretBin, err)
	}
	e.cmd, e.pgid = cmd, cmd.Process.Pid
	go e.reap()
	return e, nil
}

func newExecutor(a *Agent, spec ExecutorSpec) *Executor {
	return &Executor{
		a: a, spec: spec, id: spec.ExecutorID, fw: spec.FrameworkID, token: spec.Token,
		tasks: map[string]*taskState{}, seenUUIDs: map[string]bool{}, done: make(chan struct{}),
		mark: "EGRET_TEST_CONTAINER=" + spec.FrameworkID + "/" + spec.ExecutorID + "/" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}
}

func (a *Agent) register(e *Executor) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.executors[key(e.fw, e.id)]; dup {
		return fmt.Errorf("mesosagent: executor %s of %s exists", e.id, e.fw)
	}
	a.executors[key(e.fw, e.id)] = e
	return nil
}

// environment is what Mesos' executorEnvironment() and the containerizer set.
func (e *Executor) environment() []string {
	s := e.spec
	env := []string{
		"MESOS_FRAMEWORK_ID=" + s.FrameworkID,
		"MESOS_EXECUTOR_ID=" + s.ExecutorID,
		"MESOS_AGENT_ENDPOINT=" + e.a.addr,
		"MESOS_SLAVE_PID=slave(1)@" + e.a.addr,
		"MESOS_SLAVE_ID=" + e.a.opts.AgentID,
		"MESOS_DIRECTORY=" + s.Sandbox,
		"MESOS_SANDBOX=" + s.Sandbox,
		"MESOS_HTTP_COMMAND_EXECUTOR=0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=" + exe.FormatDuration(s.ShutdownGrace),
		"LIBPROCESS_PORT=0",
		e.mark,
	}
	if s.Checkpoint {
		env = append(env, "MESOS_CHECKPOINT=1",
			"MESOS_RECOVERY_TIMEOUT="+exe.FormatDuration(s.RecoveryTimeout),
			"MESOS_SUBSCRIPTION_BACKOFF_MAX="+exe.FormatDuration(s.BackoffMax))
	} else {
		env = append(env, "MESOS_CHECKPOINT=0")
	}
	if s.Token != "" {
		env = append(env, "MESOS_EXECUTOR_AUTHENTICATION_TOKEN="+s.Token)
	}
	if s.Wire != "" {
		env = append(env, exe.EnvWire+"="+s.Wire)
	}
	return append(env, s.Env...)
}

// reap waits for the executor process; non-terminal tasks then fail as Mesos reports them.
func (e *Executor) reap() {
	err := e.cmd.Wait()
	e.a.mu.Lock()
	e.exited, e.exitErr = true, err
	e.dropLocked()
	e.a.broadcastLocked()
	e.a.mu.Unlock()
	close(e.done)
	e.a.opts.Logf("executor %s exited: %v", e.id, err)
	e.failRemaining(mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated")
}

// failRemaining generates the agent's own terminal update for every non-terminal task.
func (e *Executor) failRemaining(state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	for _, id := range e.taskOrder {
		t := e.tasks[id]
		if t.terminal {
			continue
		}
		t.terminal, t.state = true, state
		now := float64(time.Now().UnixNano()) / 1e9
		e.updates = append(e.updates, Update{Generated: true, Status: mesos.TaskStatus{
			TaskID: t.info.TaskID, State: state.Enum(), Reason: reason.Enum(), Message: &msg,
			Source: mesos.SOURCE_AGENT.Enum(), Timestamp: &now,
		}})
	}
	e.a.broadcastLocked()
}

// destroy kills the executor's container and reports its tasks with state.
func (e *Executor) destroy(state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	e.failRemaining(state, reason, msg)
	e.kill()
}

// kill ends the executor's process group and every process carrying its container marker
// (its tasks, which live in their own process groups), as destroying a container does.
func (e *Executor) kill() {
	if e.cmd == nil {
		return
	}
	_ = syscall.Kill(-e.pgid, syscall.SIGKILL)
	killMarked(e.mark)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
	}
	killMarked(e.mark)
}

// killMarked SIGKILLs every process whose environment holds mark (by pid; /proc tells).
func killMarked(mark string) {
	ents, _ := os.ReadDir("/proc")
	want := []byte(mark + "\x00")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, want) || bytes.HasSuffix(env, []byte(mark)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ID is the executor's id.
func (e *Executor) ID() string { return e.id }

// Pid is the executor process's pid.
func (e *Executor) Pid() int { return e.pgid }

// Done is closed when the executor process has exited.
func (e *Executor) Done() <-chan struct{} { return e.done }

// ExitErr is the executor's exit (nil for status 0); valid after Done.
func (e *Executor) ExitErr() error {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	return e.exitErr
}

// Sandbox is the executor's directory.
func (e *Executor) Sandbox() string { return e.spec.Sandbox }

// WaitExit waits for the executor process to exit and returns its exit error.
func (e *Executor) WaitExit(ctx context.Context) error {
	select {
	case <-e.done:
		return e.ExitErr()
	case <-ctx.Done():
		return fmt.Errorf("executor %s still running: %w", e.id, ctx.Err())
	}
}

// LaunchTask sends LAUNCH now if the executor is subscribed, else when it subscribes.
func (e *Executor) LaunchTask(t mesos.TaskInfo) {
	t.AgentID = mesos.AgentID{Value: e.a.opts.AgentID}
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	e.addTaskLocked(t)
	e.sendOrQueueLocked(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}})
}

// LaunchGroup sends LAUNCH_GROUP.
func (e *Executor) LaunchGroup(ts []mesos.TaskInfo) {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	for i := range ts {
		ts[i].AgentID = mesos.AgentID{Value: e.a.opts.AgentID}
		e.addTaskLocked(ts[i])
	}
	e.sendOrQueueLocked(&executor.Event{Type: executor.Event_LAUNCH_GROUP,
		LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{Tasks: ts}}})
}

func (e *Executor) addTaskLocked(t mesos.TaskInfo) {
	if _, ok := e.tasks[t.TaskID.Value]; !ok {
		e.taskOrder = append(e.taskOrder, t.TaskID.Value)
	}
	e.tasks[t.TaskID.Value] = &taskState{info: t, state: mesos.TASK_STAGING}
}

func (e *Executor) sendOrQueueLocked(ev *executor.Event) {
	if e.subscribed {
		e.stream <- ev
		return
	}
	e.queued = append(e.queued, ev)
}

// Send writes ev on the open stream; it reports whether there was one (events sent while
// disconnected are lost, as with Mesos).
func (e *Executor) Send(ev *executor.Event) bool {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	if !e.subscribed {
		return false
	}
	e.stream <- ev
	return true
}

// Kill sends KILL for a task, with an optional kill policy grace (negative: none). A task
// still queued for an executor that has not subscribed is removed and reported KILLED by the
// agent itself, as Mesos does; a KILL while the executor is disconnected is lost.
func (e *Executor) Kill(taskID string, grace time.Duration) bool {
	ev := &executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: taskID}}}
	if grace >= 0 {
		ev.Kill.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(grace)}}
	}
	e.a.mu.Lock()
	if !e.subscribed {
		for i, q := range e.queued {
			if q.GetLaunch() != nil && q.Launch.Task.TaskID.Value == taskID {
				e.queued = append(e.queued[:i], e.queued[i+1:]...)
				if t := e.tasks[taskID]; t != nil && !t.terminal {
					t.terminal, t.state = true, mesos.TASK_KILLED
					msg := "Killed before delivery to the executor"
					e.updates = append(e.updates, Update{Generated: true, Status: mesos.TaskStatus{
						TaskID: t.info.TaskID, State: mesos.TASK_KILLED.Enum(), Message: &msg,
						Reason: mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(), Source: mesos.SOURCE_AGENT.Enum(),
					}})
					e.a.broadcastLocked()
				}
				e.a.mu.Unlock()
				return true
			}
		}
	}
	e.a.mu.Unlock()
	return e.Send(ev)
}

// Shutdown sends SHUTDOWN, and marks the executor terminating (a re-subscription then gets
// SHUTDOWN at once).
func (e *Executor) Shutdown() bool {
	e.a.mu.Lock()
	e.terminating = true
	e.a.mu.Unlock()
	return e.Send(&executor.Event{Type: executor.Event_SHUTDOWN})
}

// SendError sends an ERROR event.
func (e *Executor) SendError(msg string) bool {
	return e.Send(&executor.Event{Type: executor.Event_ERROR, Error: &executor.Event_Error{Message: msg}})
}

// DropStream closes the executor's event stream (the agent process stays up).
func (e *Executor) DropStream() {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	e.dropLocked()
	e.a.broadcastLocked()
}

func (e *Executor) dropLocked() {
	if e.streamClose != nil {
		close(e.streamClose)
		e.streamClose = nil
	}
	e.stream = nil
	e.subscribed = false
}

// Updates returns every update so far, in order.
func (e *Executor) Updates() []Update {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	return append([]Update(nil), e.updates...)
}

// Subscriptions returns every SUBSCRIBE accepted so far.
func (e *Executor) Subscriptions() []Subscription {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	return append([]Subscription(nil), e.subs...)
}

// Subscribed reports whether the executor has an open stream.
func (e *Executor) Subscribed() bool {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	return e.subscribed
}

// TaskState returns the agent's view of a task's state.
func (e *Executor) TaskState(id string) (mesos.TaskState, bool) {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	t := e.tasks[id]
	if t == nil {
		return 0, false
	}
	return t.state, true
}

// Wait waits until cond holds; cond reads the executor through its methods' unlocked twins:
// it gets the updates and subscriptions so far.
func (e *Executor) Wait(ctx context.Context, cond func(updates []Update, subs []Subscription) bool) error {
	return e.a.wait(ctx, func() bool { return cond(e.updates, e.subs) || (e.exited && cond(e.updates, e.subs)) })
}

// WaitState waits for an accepted update of task with state and returns it.
func (e *Executor) WaitState(ctx context.Context, taskID string, state mesos.TaskState) (mesos.TaskStatus, error) {
	var got mesos.TaskStatus
	err := e.a.wait(ctx, func() bool {
		for _, u := range e.updates {
			if u.Status.TaskID.Value == taskID && u.Status.GetState() == state && !u.Duplicate {
				got = u.Status
				return true
			}
		}
		return e.exited && false
	})
	if err != nil {
		return got, fmt.Errorf("task %s never reached %s (updates: %s): %w", taskID, state, Summary(e.Updates()), err)
	}
	return got, nil
}

// WaitSubscribed waits until the executor has subscribed n times in all.
func (e *Executor) WaitSubscribed(ctx context.Context, n int) error {
	err := e.a.wait(ctx, func() bool { return len(e.subs) >= n && e.subscribed })
	if err != nil {
		return fmt.Errorf("executor %s: %d subscriptions, want %d: %w", e.id, len(e.Subscriptions()), n, err)
	}
	return nil
}

// Summary renders updates compactly for failure messages.
func Summary(us []Update) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(u.Status.TaskID.Value + ":" + strings.TrimPrefix(u.Status.GetState().String(), "TASK_"))
		if u.Status.Healthy != nil {
			fmt.Fprintf(&b, "(healthy=%t)", *u.Status.Healthy)
		}
		if u.Generated {
			b.WriteString("(agent)")
		}
		if u.Duplicate {
			b.WriteString("(dup)")
		}
	}
	return b.String()
}

// subscribe serves SUBSCRIBE: replays the unacknowledged updates, declares lost the staging
// tasks the executor does not list, sends SUBSCRIBED and the queued launches, then streams.
func (e *Executor) subscribe(w http.ResponseWriter, r *http.Request, wire string, sub *executor.Call_Subscribe) error {
	codec := exe.Codec(wire)
	a := e.a
	a.mu.Lock()
	if e.terminating {
		a.mu.Unlock()
		w.Header().Set("Content-Type", string(codec.Type))
		w.WriteHeader(http.StatusOK)
		writeEvent(w, codec, &executor.Event{Type: executor.Event_SHUTDOWN})
		return nil
	}
	if !e.everSubscribed && len(e.queued) == 0 && len(e.tasks) > 0 {
		// Every task was killed before delivery: the agent shuts the executor down (MESOS-8411).
		a.mu.Unlock()
		w.Header().Set("Content-Type", string(codec.Type))
		w.WriteHeader(http.StatusOK)
		writeEvent(w, codec, &executor.Event{Type: executor.Event_SHUTDOWN})
		return nil
	}
	e.dropLocked() // a newer subscription replaces the older one
	rec := Subscription{Wire: wire}
	listed := map[string]bool{}
	for _, t := range sub.UnacknowledgedTasks {
		rec.UnacknowledgedTasks = append(rec.UnacknowledgedTasks, t.TaskID.Value)
		listed[t.TaskID.Value] = true
	}
	for _, u := range sub.UnacknowledgedUpdates {
		rec.UnacknowledgedUpdates = append(rec.UnacknowledgedUpdates, u.Status)
	}
	e.subs = append(e.subs, rec)
	stream := make(chan *executor.Event, 1024)
	closeCh := make(chan struct{})
	e.stream, e.streamClose, e.subscribed, e.everSubscribed = stream, closeCh, true, true
	// Replayed updates go through the normal path; their ACKs go on the new stream.
	for _, u := range sub.UnacknowledgedUpdates {
		e.acceptLocked(u.Status)
	}
	if len(e.subs) > 1 {
		queuedIDs := map[string]bool{}
		for _, ev := range e.queued {
			for _, t := range launchedTasks(ev) {
				queuedIDs[t] = true
			}
		}
		for _, id := range e.taskOrder {
			t := e.tasks[id]
			if t.state == mesos.TASK_STAGING && !listed[id] && !queuedIDs[id] {
				t.terminal, t.state = true, mesos.TASK_LOST
				msg := "Task launched during agent restart"
				e.updates = append(e.updates, Update{Generated: true, Status: mesos.TaskStatus{
					TaskID: t.info.TaskID, State: mesos.TASK_LOST.Enum(), Reason: mesos.REASON_AGENT_RESTARTED.Enum(),
					Message: &msg, Source: mesos.SOURCE_AGENT.Enum(),
				}})
			}
		}
	}
	hostname, _ := os.Hostname()
	caps := make([]mesos.FrameworkInfo_Capability, 0, len(e.spec.Capabilities))
	for _, c := range e.spec.Capabilities {
		caps = append(caps, mesos.FrameworkInfo_Capability{Type: c})
	}
	ckpt := e.spec.Checkpoint
	stream <- &executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo:  mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: e.id}, FrameworkID: &mesos.FrameworkID{Value: e.fw}},
		FrameworkInfo: mesos.FrameworkInfo{User: "egret", Name: "egret-test", ID: &mesos.FrameworkID{Value: e.fw}, Capabilities: caps, Checkpoint: &ckpt},
		AgentInfo:     mesos.AgentInfo{Hostname: hostname, ID: &mesos.AgentID{Value: a.opts.AgentID}},
		ContainerID:   &mesos.ContainerID{Value: "egret-test-" + e.id},
	}}
	for _, ev := range e.queued {
		stream <- ev
	}
	e.queued = nil
	a.broadcastLocked()
	a.mu.Unlock()

	w.Header().Set("Content-Type", string(codec.Type))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case ev := <-stream:
			if err := writeEvent(w, codec, ev); err != nil {
				return nil
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-closeCh:
			return nil
		case <-r.Context().Done():
			a.mu.Lock()
			if e.streamClose == closeCh {
				e.dropLocked()
				a.broadcastLocked()
			}
			a.mu.Unlock()
			return nil
		}
	}
}

func launchedTasks(ev *executor.Event) []string {
	var ids []string
	if l := ev.GetLaunch(); l != nil {
		ids = append(ids, l.Task.TaskID.Value)
	}
	if g := ev.GetLaunchGroup(); g != nil {
		for _, t := range g.TaskGroup.Tasks {
			ids = append(ids, t.TaskID.Value)
		}
	}
	return ids
}

func writeEvent(w http.ResponseWriter, codec encoding.Codec, ev *executor.Event) error {
	b, err := exe.Encode(codec, ev)
	if err != nil {
		return err
	}
	_, err = w.Write(exe.AppendRecord(nil, b))
	return err
}

// statusUpdate handles UPDATE: the executor must be subscribed; the update is accepted
// (or dropped as Mesos does) and acknowledged on the stream.
func (e *Executor) statusUpdate(u executor.Call_Update) error {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	if !e.subscribed {
		return fail(http.StatusForbidden, "Executor is not subscribed")
	}
	e.acceptLocked(u.Status)
	return nil
}

// acceptLocked runs Mesos' status update path on st and sends ACKNOWLEDGED.
func (e *Executor) acceptLocked(st mesos.TaskStatus) {
	if st.AgentID != nil && st.AgentID.Value != e.a.opts.AgentID {
		e.a.opts.Logf("update with agent id %q ignored (Slave ID mismatch), never acknowledged", st.AgentID.Value)
		return
	}
	st.AgentID = &mesos.AgentID{Value: e.a.opts.AgentID}
	st.ExecutorID = &mesos.ExecutorID{Value: e.id}
	st.Source = mesos.SOURCE_EXECUTOR.Enum()
	u := Update{Status: st}
	if e.seenUUIDs[string(st.UUID)] {
		u.Duplicate = true
	} else {
		e.seenUUIDs[string(st.UUID)] = true
		t := e.tasks[st.TaskID.Value]
		switch {
		case t == nil, t.terminal:
			u.Dropped = true
		default:
			t.state = st.GetState()
			if terminal(t.state) {
				t.terminal = true
			}
		}
	}
	e.updates = append(e.updates, u)
	if e.subscribed && !e.a.opts.DropAcks {
		e.stream <- &executor.Event{Type: executor.Event_ACKNOWLEDGED,
			Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}}
	}
	e.a.broadcastLocked()
}

func (e *Executor) message(data []byte) {
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	e.messages = append(e.messages, data)
	e.a.broadcastLocked()
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
