package executor_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/test/mesosagent"
)

// egretBin is $EGRET_BIN, or egret built once for the package in TestMain.
var egretBin string

func TestMain(m *testing.M) {
	code := func() int {
		if bin := os.Getenv("EGRET_BIN"); bin != "" {
			egretBin = bin
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "egret-executor-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		egretBin = filepath.Join(dir, "egret")
		cmd := exec.Command("go", "build", "-o", egretBin, "egret/cmd/egret")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build egret:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

var seq atomic.Int64

// env is one test's agent and helpers.
type env struct {
	t     *testing.T
	ctx   context.Context
	agent *mesosagent.Agent
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	a, err := mesosagent.New(mesosagent.Options{EgretBin: egretBin, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &env{t: t, ctx: ctx, agent: a, dir: t.TempDir()}
}

// launch starts an executor; spec fields left empty get test defaults.
func (v *env) launch(spec mesosagent.ExecutorSpec) *mesosagent.Executor {
	v.t.Helper()
	n := seq.Add(1)
	if spec.FrameworkID == "" {
		spec.FrameworkID = "fw-test"
	}
	if spec.ExecutorID == "" {
		spec.ExecutorID = fmt.Sprintf("exec-%d", n)
	}
	if spec.Sandbox == "" {
		spec.Sandbox = filepath.Join(v.dir, spec.ExecutorID)
	}
	e, err := v.agent.Launch(spec)
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() {
		if v.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(spec.Sandbox, "stderr"))
			v.t.Logf("executor %s stderr:\n%s", spec.ExecutorID, b)
		}
	})
	return e
}

func shellTask(id, cmd string) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name:    id,
		TaskID:  mesos.TaskID{Value: id},
		Command: &mesos.CommandInfo{Value: &cmd},
	}
}

func (v *env) waitState(e *mesosagent.Executor, task string, st mesos.TaskState) mesos.TaskStatus {
	v.t.Helper()
	s, err := e.WaitState(v.ctx, task, st)
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// states returns the executor's own (not agent-made), first-time updates of task.
func states(e *mesosagent.Executor, task string) []string {
	var out []string
	for _, u := range e.Updates() {
		if u.Status.TaskID.Value == task && !u.Duplicate && !u.Generated {
			out = append(out, strings.TrimPrefix(u.Status.GetState().String(), "TASK_"))
		}
	}
	return out
}

func (v *env) waitExit(e *mesosagent.Executor) error {
	v.t.Helper()
	select {
	case <-e.Done():
		return e.ExitErr()
	case <-v.ctx.Done():
		v.t.Fatalf("executor %s did not exit; updates: %s", e.ID(), mesosagent.Summary(e.Updates()))
		return nil
	}
}

// noGenerated fails if the agent had to make up an update (something was lost).
func noGenerated(t *testing.T, e *mesosagent.Executor) {
	t.Helper()
	for _, u := range e.Updates() {
		if u.Generated {
			t.Errorf("agent generated %s for %s (%s): an update was lost", u.Status.GetState(), u.Status.TaskID.Value, u.Status.GetMessage())
		}
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := exec.Command("mkfifo", path).Run(); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
}

// release opens the fifo for writing and writes a line, which ends a `read` in a task.
func release(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("open fifo: %v", err)
	}
	fmt.Fprintln(f, "go")
	f.Close()
}
