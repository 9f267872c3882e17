package mesosmaster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// egretBin is $EGRET_BIN, or egret built once into a temporary directory.
func egretBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("EGRET_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mesosmaster-egret-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "egret")
		out, err := exec.Command("go", "build", "-o", builtBin, "egret/cmd/egret").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build egret: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

func TestExecutorsRunRealEgretExecutor(t *testing.T) {
	x := &Executors{EgretBin: egretBin(t), Root: t.TempDir(), ShutdownGrace: time.Second}
	m := Start(Options{Launcher: x, Agents: []Agent{{ID: "a1", Hostname: "h1", Resources: Resources(2, 1024, 1000, 100, 110)}}})
	defer m.Close()
	s := subscribe(t, m.URL(), info("", 60))
	defer s.close()
	o := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	// Task data the executor cannot read: it must say so with a terminal state.
	ex := &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "t1.executor"}, Command: &mesos.CommandInfo{}}
	task := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t1"}, AgentID: o.AgentID, Executor: ex,
		Resources: Resources(1, 10, 10), Data: []byte(`{"format_version":1,"kind":"nonsense"}`)}
	s.call(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(o.ID)))
	var states []string
	for {
		u := s.next(scheduler.Event_UPDATE).Update.Status
		s.call(calls.Acknowledge(u.GetAgentID().GetValue(), u.TaskID.Value, u.UUID))
		states = append(states, u.GetState().String())
		if terminal(u.GetState()) {
			if !strings.Contains(u.GetMessage(), "kind") {
				t.Errorf("terminal update %s %q does not name the bad field", u.GetState(), u.GetMessage())
			}
			break
		}
	}
	if e := x.Executor("t1"); e == nil || !strings.HasSuffix(e.Sandbox(), filepath.Join("frameworks", s.fw, "executors", "t1.executor", "runs", "latest")) {
		t.Errorf("executor sandbox not laid out as Mesos does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Executor("t1").WaitExit(ctx); err != nil && ctx.Err() != nil {
		t.Errorf("executor still running after its only task ended: %v (states %v)", err, states)
	}
}
