package localsched

import (
	"context"
	"io"
	"log"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"egret/proc"
)

// awaitState waits for container c to reach state with a pid other than notPid.
func awaitState(t *testing.T, e *executors, c int, state string, notPid int) executorView {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, v := range e.snapshot() {
			if v.Container == c && v.State == state && v.Pid != notPid {
				return v
			}
		}
		time.Sleep(10 * time.Millisecond) // no event exposes state changes to the test
	}
	t.Fatalf("container %d never reached %s (snapshot %+v)", c, state, e.snapshot())
	return executorView{}
}

func TestExecutorsRestartStopAdopt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	cmd := func(c int, ports []int) (proc.Spec, error) {
		if len(ports) != len(portNames) {
			t.Errorf("container %d got %d ports, want %d", c, len(ports), len(portNames))
		}
		return proc.Spec{Argv: []string{"sleep", "60"}, Dir: dir, Logs: proc.LogPolicy{Dir: dir}}, nil
	}
	changes := make(chan struct{}, 100)
	e := newExecutors(ctx, "127.0.0.1", restartPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Budget: 2, Window: time.Minute}, 2*time.Second,
		cmd, func() { changes <- struct{}{} }, log.New(io.Discard, "", 0))
	defer func() {
		for _, v := range e.snapshot() {
			killGroup(v.Pid, syscall.SIGKILL)
		}
		cancel()
		e.wait()
	}()

	for _, c := range []int{0, 1} {
		if err := e.start(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	v1 := awaitState(t, e, 1, stateRunning, 0)
	if err := e.start(1, nil); err == nil {
		t.Errorf("a second start of container 1 succeeded")
	}

	// SIGKILL: restarted on the same ports with a new pid.
	killGroup(v1.Pid, syscall.SIGKILL)
	v1b := awaitState(t, e, 1, stateRunning, v1.Pid)
	if v1b.Restarts != 1 || v1b.Ports[0] != v1.Ports[0] {
		t.Errorf("after SIGKILL: %+v, want 1 restart on ports %v", v1b, v1.Ports)
	}

	// Budget of 2: the third death gives up.
	killGroup(v1b.Pid, syscall.SIGKILL)
	v1c := awaitState(t, e, 1, stateRunning, v1b.Pid)
	killGroup(v1c.Pid, syscall.SIGKILL)
	awaitState(t, e, 1, stateFailed, -1)

	// Stop on purpose: gone within the grace, not restarted.
	v0 := awaitState(t, e, 0, stateRunning, 0)
	if err := e.stop(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if alive(v0.Pid, mustStart(t, v0.Pid)) {
		t.Errorf("container 0 pid %d still runs after stop", v0.Pid)
	}
	if got := e.records(); len(got) != 1 {
		t.Errorf("records after stop = %v, want only container 1's", got)
	}

	// Adopt a process this executors did not start, then stop it.
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { other.Wait(); close(reaped) }()
	st, _ := startTime(other.Process.Pid)
	e.adopt(2, execRecord{Pid: other.Process.Pid, StartTime: st, Ports: []int{1, 2}})
	if err := e.stop(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Errorf("adopted pid %d not stopped", other.Process.Pid)
	}
}

func mustStart(t *testing.T, pid int) uint64 {
	st, err := startTime(pid)
	if err != nil {
		return 0 // gone already
	}
	return st
}
