package executor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosexec "github.com/mesos/mesos-go/api/v1/lib/executor"

	"egret/executor"
	"egret/test/mesosagent"
)

// A task runs to its end: STARTING, RUNNING, FINISHED, each acknowledged, then the executor
// exits 0, over either wire format.
func TestLaunchRunFinish(t *testing.T) {
	for _, wire := range []string{executor.WireProtobuf, executor.WireJSON} {
		t.Run(wire, func(t *testing.T) {
			v := newEnv(t)
			e := v.launch(mesosagent.ExecutorSpec{Wire: wire})
			e.LaunchTask(shellTask("t1", "echo hello from the task; echo to stderr >&2"))
			v.waitState(e, "t1", mesos.TASK_FINISHED)
			if err := v.waitExit(e); err != nil {
				t.Fatalf("executor exit: %v", err)
			}
			if got, want := states(e, "t1"), []string{"STARTING", "RUNNING", "FINISHED"}; !reflect.DeepEqual(got, want) {
				t.Errorf("states = %v, want %v", got, want)
			}
			noGenerated(t, e)
			subs := e.Subscriptions()
			if len(subs) != 1 || subs[0].Wire != wire {
				t.Errorf("subscriptions = %+v, want one over %s", subs, wire)
			}
			out, err := os.ReadFile(filepath.Join(e.Sandbox(), "tasks", "t1", "stdout"))
			if err != nil || !strings.Contains(string(out), "hello from the task") {
				t.Errorf("task stdout = %q, %v; want the task's output", out, err)
			}
			errOut, _ := os.ReadFile(filepath.Join(e.Sandbox(), "tasks", "t1", "stderr"))
			if !strings.Contains(string(errOut), "to stderr") {
				t.Errorf("task stderr = %q, want the task's error output", errOut)
			}
		})
	}
}

// A failing command ends FAILED with its status and last output; several tasks run in one
// executor, each with its own updates.
func TestFailedTaskAndSeveralTasks(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	e.LaunchTask(shellTask("bad", "echo something went wrong; exit 7"))
	e.LaunchTask(shellTask("good", "exit 0"))
	st := v.waitState(e, "bad", mesos.TASK_FAILED)
	if msg := st.GetMessage(); !strings.Contains(msg, "7") || !strings.Contains(msg, "something went wrong") {
		t.Errorf("FAILED message = %q, want the exit status and the last output", msg)
	}
	v.waitState(e, "good", mesos.TASK_FINISHED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// KILL honours the kill policy; a second KILL with a shorter grace cuts the first one's;
// with TASK_KILLING_STATE the executor reports KILLING first; a task that exits 0 on
// SIGTERM is still KILLED.
func TestKillPolicy(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{Capabilities: []mesos.FrameworkInfo_Capability_Type{mesos.FrameworkInfo_Capability_TASK_KILLING_STATE}})
	// stubborn ignores SIGTERM; polite exits 0 on it.
	e.LaunchTask(shellTask("stubborn", "trap '' TERM; echo ready; while :; do sleep 1; done"))
	e.LaunchTask(shellTask("polite", "trap 'exit 0' TERM; while :; do sleep 1; done"))
	v.waitState(e, "stubborn", mesos.TASK_RUNNING)
	v.waitState(e, "polite", mesos.TASK_RUNNING)

	e.Kill("polite", 30*time.Second)
	v.waitState(e, "polite", mesos.TASK_KILLED)
	if got, want := states(e, "polite"), []string{"STARTING", "RUNNING", "KILLING", "KILLED"}; !reflect.DeepEqual(got, want) {
		t.Errorf("polite states = %v, want %v", got, want)
	}

	e.Kill("stubborn", time.Hour)
	v.waitState(e, "stubborn", mesos.TASK_KILLING)
	e.Kill("stubborn", 2*time.Hour) // longer: no effect
	start := time.Now()
	e.Kill("stubborn", 100*time.Millisecond)
	v.waitState(e, "stubborn", mesos.TASK_KILLED)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("KILLED %s after the shortened kill; the second KILL did not shorten the grace", d)
	}
	if got, want := states(e, "stubborn"), []string{"STARTING", "RUNNING", "KILLING", "KILLED"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stubborn states = %v, want %v", got, want)
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// Without TASK_KILLING_STATE no KILLING is sent; the task's own kill policy applies.
func TestKillWithoutKillingCapability(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	task := shellTask("t", "exec sleep 1000")
	task.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Second)}}
	e.LaunchTask(task)
	v.waitState(e, "t", mesos.TASK_RUNNING)
	e.Kill("t", -1)
	v.waitState(e, "t", mesos.TASK_KILLED)
	if got, want := states(e, "t"), []string{"STARTING", "RUNNING", "KILLED"}; !reflect.DeepEqual(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
}

// SHUTDOWN kills every task (KILLED each) and the executor exits within the grace period.
func TestShutdown(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{ShutdownGrace: 6 * time.Second})
	e.LaunchTask(shellTask("a", "exec sleep 1000"))
	e.LaunchTask(shellTask("b", "trap '' TERM; while :; do sleep 1; done"))
	v.waitState(e, "a", mesos.TASK_RUNNING)
	v.waitState(e, "b", mesos.TASK_RUNNING)
	e.Shutdown()
	v.waitState(e, "a", mesos.TASK_KILLED)
	v.waitState(e, "b", mesos.TASK_KILLED)
	start := time.Now()
	err := v.waitExit(e)
	if err != nil {
		t.Errorf("executor exit after SHUTDOWN: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("executor took %s after its last update, more than the shutdown grace", d)
	}
	noGenerated(t, e)
}

// pidOf reads a pid the task wrote (RUNNING comes as soon as the command started, so the
// file may not be there yet: poll, as no event exists for it).
func pidOf(t *testing.T, v *env, path string) int {
	t.Helper()
	waitFile(t, v, path, "\n")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is not alive.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// With checkpointing, an agent restart leaves the tasks running; the executor re-subscribes
// (through the agent's 503s while it recovers) with its unacknowledged updates, and nothing
// is lost.
func TestAgentRestartWithCheckpoint(t *testing.T) {
	v := newEnv(t)
	fifo := filepath.Join(v.dir, "fifo")
	mkfifo(t, fifo)
	e := v.launch(mesosagent.ExecutorSpec{Checkpoint: true, BackoffMax: 300 * time.Millisecond, RecoveryTimeout: time.Minute})
	e.LaunchTask(shellTask("ends", "read x < "+fifo+"; echo ending; exit 3"))
	e.LaunchTask(shellTask("stays", "echo $$ > stays.pid; exec sleep 1000"))
	v.waitState(e, "ends", mesos.TASK_RUNNING)
	v.waitState(e, "stays", mesos.TASK_RUNNING)
	stays := pidOf(t, v, filepath.Join(e.Sandbox(), "stays.pid"))

	v.agent.Stop()
	release(t, fifo) // "ends" fails while the agent is away: its update waits in the executor
	// The executor's log is the only sign that it saw the end while disconnected.
	waitFile(t, v, filepath.Join(e.Sandbox(), "stderr"), "task ends: TASK_FAILED")
	if err := v.agent.Start(true); err != nil {
		t.Fatal(err)
	}
	if err := v.agent.Wait(v.ctx, func() bool { return v.agent.Codes()[503] >= 2 }); err != nil {
		t.Fatalf("no 503 answered while recovering: %v", err)
	}
	v.agent.Recovered()
	if err := e.WaitSubscribed(v.ctx, 2); err != nil {
		t.Fatal(err)
	}
	st := v.waitState(e, "ends", mesos.TASK_FAILED)
	if !strings.Contains(st.GetMessage(), "3") {
		t.Errorf("FAILED message = %q, want exit status 3", st.GetMessage())
	}
	subs := e.Subscriptions()
	var resent []string
	for _, s := range subs[1:] {
		for _, u := range s.UnacknowledgedUpdates {
			resent = append(resent, u.TaskID.Value+":"+u.GetState().String())
		}
	}
	if !contains(resent, "ends:TASK_FAILED") {
		t.Errorf("re-subscriptions carried %v, want the unacknowledged ends:TASK_FAILED", resent)
	}
	if !alive(stays) {
		t.Errorf("task stays (pid %d) died during the agent's restart", stays)
	}
	if got := states(e, "stays"); !reflect.DeepEqual(got, []string{"STARTING", "RUNNING"}) {
		t.Errorf("stays states = %v, want STARTING RUNNING only", got)
	}
	e.Kill("stays", time.Second)
	v.waitState(e, "stays", mesos.TASK_KILLED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// waitFile polls path (no event exists for another process's log line) until it holds s.
func waitFile(t *testing.T, v *env, path, s string) {
	t.Helper()
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		select {
		case <-v.ctx.Done():
			t.Fatalf("%s never contained %q", path, s)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Without checkpointing, losing the agent kills the tasks and ends the executor.
func TestAgentGoneWithoutCheckpoint(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{ShutdownGrace: 4 * time.Second})
	e.LaunchTask(shellTask("t", "echo $$ > t.pid; exec sleep 1000"))
	v.waitState(e, "t", mesos.TASK_RUNNING)
	pid := pidOf(t, v, filepath.Join(e.Sandbox(), "t.pid"))
	v.agent.Stop()
	err := v.waitExit(e)
	if err == nil {
		t.Errorf("executor exited 0 after losing its agent with an undelivered update; want a failure status")
	}
	if alive(pid) {
		t.Errorf("task (pid %d) still runs after the executor gave up", pid)
	}
}

// The executor keeps trying while the agent answers 503 (recovering), then subscribes.
func TestSubscribeDuringRecovery(t *testing.T) {
	v := newEnv(t)
	v.agent.SetRecovering(true)
	e := v.launch(mesosagent.ExecutorSpec{})
	e.LaunchTask(shellTask("t", "exit 0"))
	if err := v.agent.Wait(v.ctx, func() bool { return v.agent.Codes()[503] >= 2 }); err != nil {
		t.Fatalf("executor did not retry SUBSCRIBE through 503s: %v", err)
	}
	v.agent.SetRecovering(false)
	v.waitState(e, "t", mesos.TASK_FINISHED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// ERROR makes the executor subscribe again; its tasks are untouched.
func TestErrorEvent(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	e.LaunchTask(shellTask("t", "echo $$ > t.pid; exec sleep 1000"))
	v.waitState(e, "t", mesos.TASK_RUNNING)
	pid := pidOf(t, v, filepath.Join(e.Sandbox(), "t.pid"))
	if !e.SendError("something is wrong") {
		t.Fatal("no stream to send ERROR on")
	}
	if err := e.WaitSubscribed(v.ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Errorf("task died after ERROR")
	}
	e.Kill("t", time.Second)
	v.waitState(e, "t", mesos.TASK_KILLED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// A LAUNCH event larger than mesos-go's 4 MiB RecordIO limit is read whole.
func TestLargeLaunch(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	task := shellTask("big", "exit 0")
	task.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: "blob", Value: ptr(strings.Repeat("x", 5<<20))}}}
	e.LaunchTask(task)
	v.waitState(e, "big", mesos.TASK_FINISHED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// The executor authenticates with its token, and its tasks never see it.
func TestTokenNotInherited(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{Token: "s3cret-token"})
	e.LaunchTask(shellTask("t", `echo "token=[$MESOS_EXECUTOR_AUTHENTICATION_TOKEN]"; env`))
	v.waitState(e, "t", mesos.TASK_FINISHED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	out, err := os.ReadFile(filepath.Join(e.Sandbox(), "tasks", "t", "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "token=[]") || strings.Contains(string(out), "s3cret-token") {
		t.Errorf("task output = %q; the token leaked into the task's environment", out)
	}
	if c := v.agent.Codes(); c[401]+c[403] > 0 {
		t.Errorf("agent refused the executor's token: %v", c)
	}
}

// Without ACKs the executor does not exit at once; its fail-safe ends it with an error.
func TestAckFailSafe(t *testing.T) {
	v := newEnv(t)
	a, err := mesosagent.New(mesosagent.Options{EgretBin: egretBin, Logf: t.Logf, DropAcks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	v.agent = a
	e := v.launch(mesosagent.ExecutorSpec{Env: []string{executor.EnvAckTimeout + "=1secs"}})
	e.LaunchTask(shellTask("t", "exit 0"))
	v.waitState(e, "t", mesos.TASK_FINISHED)
	err = v.waitExit(e)
	if err == nil {
		t.Fatal("executor exited 0 with unacknowledged updates")
	}
	waitFile(t, v, filepath.Join(e.Sandbox(), "stderr"), "still unacknowledged")
}

// Other events: HEARTBEAT, MESSAGE, an unknown type and stray ACKs change nothing;
// LAUNCH_GROUP starts each task of the group.
func TestOtherEvents(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	fifo1, fifo2 := filepath.Join(v.dir, "fifo1"), filepath.Join(v.dir, "fifo2")
	mkfifo(t, fifo1)
	mkfifo(t, fifo2)
	e.LaunchGroup([]mesos.TaskInfo{shellTask("g1", "read x < "+fifo1), shellTask("g2", "read x < "+fifo2)})
	v.waitState(e, "g1", mesos.TASK_RUNNING)
	v.waitState(e, "g2", mesos.TASK_RUNNING)
	for _, ev := range []*mesosexec.Event{
		{Type: mesosexec.Event_HEARTBEAT},
		{Type: mesosexec.Event_MESSAGE, Message: &mesosexec.Event_Message{Data: []byte("hello")}},
		{Type: mesosexec.Event_Type(42)},
		{Type: mesosexec.Event_ACKNOWLEDGED, Acknowledged: &mesosexec.Event_Acknowledged{TaskID: mesos.TaskID{Value: "g1"}, UUID: make([]byte, 16)}},
		{Type: mesosexec.Event_KILL, Kill: &mesosexec.Event_Kill{TaskID: mesos.TaskID{Value: "nonexistent"}}},
	} {
		if !e.Send(ev) {
			t.Fatal("no stream")
		}
	}
	release(t, fifo1)
	release(t, fifo2)
	v.waitState(e, "g1", mesos.TASK_FINISHED)
	v.waitState(e, "g2", mesos.TASK_FINISHED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	if n := len(e.Subscriptions()); n != 1 {
		t.Errorf("%d subscriptions, want 1: no event but ERROR should make the executor re-subscribe", n)
	}
	noGenerated(t, e)
}

// A task killed before the executor subscribed never reaches it; the agent then shuts the
// executor down, which exits at once.
func TestKillBeforeSubscribe(t *testing.T) {
	v := newEnv(t)
	v.agent.SetRecovering(true)
	e := v.launch(mesosagent.ExecutorSpec{})
	e.LaunchTask(shellTask("t", "exec sleep 1000"))
	e.Kill("t", -1)
	v.agent.SetRecovering(false)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit after SHUTDOWN on subscribe: %v", err)
	}
	if got := states(e, "t"); len(got) != 0 {
		t.Errorf("executor sent %v for a task it never received", got)
	}
	if st, _ := e.TaskState("t"); st != mesos.TASK_KILLED {
		t.Errorf("agent's task state = %s, want TASK_KILLED", st)
	}
}

// With checkpointing, a dropped stream (the agent itself stays up) is a disconnection: the
// executor subscribes again and its task is untouched.
func TestDroppedStreamWithCheckpoint(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{Checkpoint: true, BackoffMax: 200 * time.Millisecond})
	e.LaunchTask(shellTask("t", "echo $$ > t.pid; exec sleep 1000"))
	v.waitState(e, "t", mesos.TASK_RUNNING)
	pid := pidOf(t, v, filepath.Join(e.Sandbox(), "t.pid"))
	e.DropStream()
	if err := e.WaitSubscribed(v.ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Errorf("task died when the stream dropped")
	}
	e.Kill("t", time.Second)
	v.waitState(e, "t", mesos.TASK_KILLED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}
