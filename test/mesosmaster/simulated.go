package mesosmaster

import (
	"sync"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Simulated is a Launcher whose tasks run nothing: launched, they report
// TASK_STARTING then TASK_RUNNING; killed, TASK_KILLED.
type Simulated struct {
	mu      sync.Mutex
	updates map[string]func(mesos.TaskStatus)
}

// NewSimulated returns a Launcher of simulated tasks.
func NewSimulated() *Simulated { return &Simulated{updates: map[string]func(mesos.TaskStatus){}} }

// Launch reports the task starting and running.
func (s *Simulated) Launch(agent Agent, fw mesos.FrameworkInfo, task mesos.TaskInfo, update func(mesos.TaskStatus)) error {
	s.mu.Lock()
	s.updates[task.TaskID.Value] = update
	s.mu.Unlock()
	src := mesos.SOURCE_EXECUTOR.Enum()
	update(mesos.TaskStatus{TaskID: task.TaskID, State: mesos.TASK_STARTING.Enum(), Source: src})
	update(mesos.TaskStatus{TaskID: task.TaskID, State: mesos.TASK_RUNNING.Enum(), Source: src})
	return nil
}

// Kill reports the task killed.
func (s *Simulated) Kill(agentID, taskID string) {
	s.mu.Lock()
	u := s.updates[taskID]
	delete(s.updates, taskID)
	s.mu.Unlock()
	if u != nil {
		u(mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: mesos.TASK_KILLED.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum()})
	}
}

// Close forgets every task.
func (s *Simulated) Close() {
	s.mu.Lock()
	s.updates = map[string]func(mesos.TaskStatus){}
	s.mu.Unlock()
}
