package mesosmaster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"egret/test/mesosagent"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Executors is a Launcher that runs each task under a real `egret executor`,
// started by a test agent (test/mesosagent) per simulated agent, in a sandbox
// laid out as Mesos lays it out:
// <Root>/<agent>/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/latest.
type Executors struct {
	EgretBin string
	Root     string
	// Env is added to every executor's environment.
	Env []string
	// ShutdownGrace is the executors' MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD (default 5s).
	ShutdownGrace time.Duration
	Logf          func(format string, args ...any)

	mu     sync.Mutex
	agents map[string]*mesosagent.Agent
	tasks  map[string]*mesosagent.Executor // by task id
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (x *Executors) init() {
	if x.agents == nil {
		x.agents = map[string]*mesosagent.Agent{}
		x.tasks = map[string]*mesosagent.Executor{}
		x.ctx, x.cancel = context.WithCancel(context.Background())
	}
}

// Sandbox is where the executor of a task runs.
func (x *Executors) Sandbox(agentID, frameworkID, executorID string) string {
	return filepath.Join(x.Root, agentID, "slaves", agentID, "frameworks", frameworkID, "executors", executorID, "runs", "latest")
}

// Launch starts the task's executor on the agent and forwards its updates.
func (x *Executors) Launch(ag Agent, fw mesos.FrameworkInfo, task mesos.TaskInfo, update func(mesos.TaskStatus)) error {
	if task.Executor == nil {
		return fmt.Errorf("task %s has no executor: egret's test agents run only `egret executor`", task.TaskID.Value)
	}
	x.mu.Lock()
	x.init()
	a := x.agents[ag.ID]
	if a == nil {
		var err error
		a, err = mesosagent.New(mesosagent.Options{AgentID: ag.ID, EgretBin: x.EgretBin, Logf: x.Logf})
		if err != nil {
			x.mu.Unlock()
			return err
		}
		x.agents[ag.ID] = a
	}
	ctx := x.ctx
	x.mu.Unlock()

	var caps []mesos.FrameworkInfo_Capability_Type
	for _, c := range fw.Capabilities {
		caps = append(caps, c.Type)
	}
	ex, err := a.Launch(mesosagent.ExecutorSpec{
		FrameworkID: fw.GetID().GetValue(), ExecutorID: task.Executor.ExecutorID.Value, Capabilities: caps,
		Checkpoint: fw.GetCheckpoint(), ShutdownGrace: x.ShutdownGrace, Env: x.Env,
		Sandbox: x.Sandbox(ag.ID, fw.GetID().GetValue(), task.Executor.ExecutorID.Value),
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.tasks[task.TaskID.Value] = ex
	x.mu.Unlock()
	ex.LaunchTask(task)
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		seen := 0
		for {
			var us []mesosagent.Update
			err := ex.Wait(ctx, func(updates []mesosagent.Update, _ []mesosagent.Subscription) bool {
				if len(updates) > seen {
					us = append([]mesosagent.Update(nil), updates[seen:]...)
					return true
				}
				return false
			})
			if err != nil {
				return
			}
			seen += len(us)
			for _, u := range us {
				if u.Duplicate || u.Dropped || u.Status.TaskID.Value != task.TaskID.Value {
					continue
				}
				update(u.Status)
				if terminal(u.Status.GetState()) {
					return
				}
			}
		}
	}()
	return nil
}

// Kill asks the task's executor to kill it.
func (x *Executors) Kill(agentID, taskID string) {
	x.mu.Lock()
	ex := x.tasks[taskID]
	x.mu.Unlock()
	if ex != nil {
		ex.Kill(taskID, -1)
	}
}

// Executor returns the agent's side of a task's executor.
func (x *Executors) Executor(taskID string) *mesosagent.Executor {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.tasks[taskID]
}

// Close kills every executor and stops the agents.
func (x *Executors) Close() {
	x.mu.Lock()
	x.init()
	x.cancel()
	agents := x.agents
	x.agents = map[string]*mesosagent.Agent{}
	x.mu.Unlock()
	x.wg.Wait()
	for _, a := range agents {
		a.Close()
	}
}
