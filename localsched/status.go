package localsched

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"egret/heron/model"

	"egret/sandbox"
)

// TopologyStatus is the JSON of `egret status --json` and of the daemon's GET /status.
type TopologyStatus struct {
	FormatVersion int               `json:"format_version"`
	Topology      string            `json:"topology"`
	Cluster       string            `json:"cluster"`
	Role          string            `json:"role"`
	Environment   string            `json:"environment"`
	State         string            `json:"state"` // RUNNING, PAUSED, or "no physical plan"
	Scheduler     SchedulerStatus   `json:"scheduler"`
	Containers    []ContainerStatus `json:"containers"`
}

// SchedulerStatus describes the daemon.
type SchedulerStatus struct {
	Pid      int    `json:"pid"`
	Endpoint string `json:"endpoint"`
	Running  bool   `json:"running"`
}

// ContainerStatus is one container: its executor as the daemon sees it, and
// the processes as the executor reports them in its status file.
type ContainerStatus struct {
	executorView
	Sandbox   string          `json:"sandbox"`
	Processes json.RawMessage `json:"executor_status,omitempty"`
}

func (d *daemon) status(ctx context.Context) (*TopologyStatus, error) {
	s := &TopologyStatus{
		FormatVersion: 1,
		Topology:      d.opts.Topology,
		Cluster:       d.settings.Cluster, Role: d.settings.Role, Environment: d.settings.Environment,
		State:     topologyState(ctx, d.st, d.opts.Topology),
		Scheduler: SchedulerStatus{Pid: os.Getpid(), Endpoint: d.endpoint, Running: true},
	}
	for _, v := range d.execs.snapshot() {
		s.Containers = append(s.Containers, containerStatus(d.wd, v))
	}
	return s, nil
}

func containerStatus(wd workdir, v executorView) ContainerStatus {
	cs := ContainerStatus{executorView: v, Sandbox: wd.container(v.Container)}
	if b, err := os.ReadFile(statusFile(wd, v.Container)); err == nil && json.Valid(b) {
		cs.Processes = json.RawMessage(b)
	}
	return cs
}

// statusFile is the executor's status file in container c's sandbox.
func statusFile(wd workdir, c int) string {
	return filepath.Join(wd.container(c), sandbox.StatusFileName(c))
}

// topologyState reads the topology's state from its physical plan.
func topologyState(ctx context.Context, st stateTree, name string) string {
	pp, err := st.PhysicalPlan(ctx, name)
	if err != nil || pp == nil || pp.GetTopology() == nil {
		return "no physical plan"
	}
	switch pp.GetTopology().GetState() {
	case model.TopologyState_RUNNING:
		return "running"
	case model.TopologyState_PAUSED:
		return "paused"
	case model.TopologyState_KILLED:
		return "killed"
	}
	return "unknown"
}
