package localsched

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Executor states, as `egret status` shows them.
const (
	stateRunning = "running"
	stateBackoff = "backoff" // dead, waiting to be restarted
	stateFailed  = "failed"  // dead, restart budget spent
	stateStopped = "stopped" // stopped on purpose
)

// executors runs one executor process per container. Each is started in its
// own process group and without a parent-death signal, so it outlives the
// daemon; a watcher per container waits for its exit through a pidfd (the same
// way for children and for executors adopted from an earlier daemon) and
// restarts it under the restart policy.
type executors struct {
	host   string
	policy restartPolicy
	// command builds container c's executor command for the given ports.
	command func(c int, ports []int) (*exec.Cmd, error)
	// changed is called (without the lock) whenever a record changes, to persist it.
	changed func()
	log     *log.Logger

	ctx context.Context // the daemon's life: when it ends the watchers return and the processes keep running
	wg  sync.WaitGroup

	mu sync.Mutex
	m  map[int]*execState
}

type execState struct {
	rec      execRecord
	state    string
	failures []time.Time
	lastExit string
	stop     chan struct{} // closed to stop the container on purpose
	done     chan struct{} // closed when the watcher has returned
	cmd      *exec.Cmd     // nil for an adopted executor
}

func newExecutors(ctx context.Context, host string, policy restartPolicy, command func(int, []int) (*exec.Cmd, error), changed func(), l *log.Logger) *executors {
	return &executors{host: host, policy: policy, command: command, changed: changed, log: l, ctx: ctx, m: map[int]*execState{}}
}

// wait returns once every watcher has returned.
func (e *executors) wait() { e.wg.Wait() }

// records returns what must be persisted.
func (e *executors) records() map[int]execRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[int]execRecord{}
	for c, s := range e.m {
		if s.state != stateStopped {
			out[c] = s.rec
		}
	}
	return out
}

// usedPorts is every port held by a container other than c.
func (e *executors) usedPorts(except int) map[int]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	used := map[int]bool{}
	for c, s := range e.m {
		if c == except {
			continue
		}
		for _, p := range s.rec.Ports {
			used[p] = true
		}
	}
	return used
}

// portsFor keeps a container's ports when they are still free, so a restarted
// container is found where it was, and otherwise reserves new ones.
func (e *executors) portsFor(c int, old []int) ([]int, error) {
	if len(old) == len(portNames) && portsFree(e.host, old) {
		return old, nil
	}
	return reservePorts(e.host, len(portNames), e.usedPorts(c))
}

// start launches container c's executor (ports nil: reserve new ones).
func (e *executors) start(c int, ports []int) error {
	ports, err := e.portsFor(c, ports)
	if err != nil {
		return fmt.Errorf("container %d: %w", c, err)
	}
	s := &execState{rec: execRecord{Ports: ports}, stop: make(chan struct{}), done: make(chan struct{})}
	e.mu.Lock()
	if old, ok := e.m[c]; ok && old.state != stateStopped {
		e.mu.Unlock()
		return fmt.Errorf("container %d already has an executor", c)
	}
	if old, ok := e.m[c]; ok {
		s.rec.Restarts = old.rec.Restarts
	}
	e.m[c] = s
	e.mu.Unlock()
	if err := e.launch(c, s); err != nil {
		e.mu.Lock()
		s.state = stateFailed
		s.lastExit = err.Error()
		e.mu.Unlock()
		close(s.done)
		e.changed()
		return err
	}
	e.changed()
	e.wg.Add(1)
	go e.watch(c, s)
	return nil
}

// adopt watches an executor started by an earlier daemon.
func (e *executors) adopt(c int, rec execRecord) {
	s := &execState{rec: rec, state: stateRunning, stop: make(chan struct{}), done: make(chan struct{})}
	e.mu.Lock()
	e.m[c] = s
	e.mu.Unlock()
	e.log.Printf("container %d: adopted executor pid %d", c, rec.Pid)
	e.wg.Add(1)
	go e.watch(c, s)
}

// launch starts the process for s (the lock is not held).
func (e *executors) launch(c int, s *execState) error {
	cmd, err := e.command(c, s.rec.Ports)
	if err != nil {
		return fmt.Errorf("container %d: %w", c, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, no parent-death signal: it outlives the daemon.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("container %d: start executor: %w", c, err)
	}
	st, err := startTime(cmd.Process.Pid)
	if err != nil {
		st = 0
	}
	e.mu.Lock()
	s.cmd = cmd
	s.rec.Pid = cmd.Process.Pid
	s.rec.StartTime = st
	s.state = stateRunning
	e.mu.Unlock()
	e.log.Printf("container %d: executor started, pid %d, ports %v", c, cmd.Process.Pid, s.rec.Ports)
	return nil
}

// watch waits for the executor's exits and restarts it until it is stopped,
// its budget is spent, or the daemon ends.
func (e *executors) watch(c int, s *execState) {
	defer e.wg.Done()
	defer close(s.done)
	for {
		e.mu.Lock()
		pid, cmd := s.rec.Pid, s.cmd
		e.mu.Unlock()
		if err := waitExit(e.ctx, pid); err != nil {
			return // the daemon is ending: the executor keeps running
		}
		how := "exited"
		if cmd != nil {
			cmd.Wait() // reap our child
			if cmd.ProcessState != nil {
				how = cmd.ProcessState.String()
			}
		}
		select {
		case <-s.stop:
			e.mu.Lock()
			s.state = stateStopped
			e.mu.Unlock()
			e.log.Printf("container %d: executor pid %d stopped (%s)", c, pid, how)
			return
		default:
		}
		now := time.Now()
		e.mu.Lock()
		s.failures = append(s.failures, now)
		delay, ok := e.policy.next(s.failures, now)
		s.lastExit = how
		if ok {
			s.state = stateBackoff
		} else {
			s.state = stateFailed
		}
		e.mu.Unlock()
		e.changed()
		if !ok {
			e.log.Printf("container %d: executor pid %d %s; restart budget spent (%d restarts in %v), giving up", c, pid, how, e.policy.Budget, e.policy.Window)
			return
		}
		e.log.Printf("container %d: executor pid %d %s; restarting in %v", c, pid, how, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			e.mu.Lock()
			s.state = stateStopped
			e.mu.Unlock()
			return
		case <-e.ctx.Done():
			t.Stop()
			return
		}
		ports, err := e.portsFor(c, s.rec.Ports)
		if err == nil {
			e.mu.Lock()
			s.rec.Ports = ports
			s.rec.Restarts++
			e.mu.Unlock()
			err = e.launch(c, s)
		}
		if err != nil {
			e.mu.Lock()
			s.state = stateFailed
			s.lastExit = err.Error()
			e.mu.Unlock()
			e.changed()
			e.log.Printf("container %d: %v", c, err)
			return
		}
		e.changed()
	}
}

// stop stops container c's executor: SIGTERM to its process group, SIGKILL
// after grace, and returns once it is gone (or ctx ends).
func (e *executors) stop(ctx context.Context, c int, grace time.Duration) error {
	e.mu.Lock()
	s, ok := e.m[c]
	e.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	e.mu.Lock()
	pid, st, state := s.rec.Pid, s.rec.StartTime, s.state
	e.mu.Unlock()
	if state == stateRunning && alive(pid, st) {
		killGroup(pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			e.log.Printf("container %d: executor pid %d still running after %v, killing it", c, pid, grace)
			killGroup(pid, syscall.SIGKILL)
			select {
			case <-s.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The group may outlive its leader: take the rest down too.
	killGroup(pid, syscall.SIGKILL)
	e.mu.Lock()
	s.state = stateStopped
	e.mu.Unlock()
	e.changed()
	return nil
}

// stopAll stops every container at once.
func (e *executors) stopAll(ctx context.Context, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, 0)
	var mu sync.Mutex
	for _, c := range e.containers() {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			if err := e.stop(ctx, c, grace); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("container %d: %w", c, err))
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// restart stops container c and starts it again on the same ports when they are free.
func (e *executors) restart(ctx context.Context, c int, grace time.Duration) error {
	e.mu.Lock()
	s, ok := e.m[c]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("no container %d", c)
	}
	if err := e.stop(ctx, c, grace); err != nil {
		return err
	}
	e.mu.Lock()
	ports := s.rec.Ports
	s.rec.Restarts++
	e.mu.Unlock()
	return e.start(c, ports)
}

func (e *executors) containers() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for c := range e.m {
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

// executorView is one executor as status shows it.
type executorView struct {
	Container int    `json:"container"`
	State     string `json:"state"`
	Pid       int    `json:"pid"`
	Restarts  int    `json:"restarts"`
	Ports     []int  `json:"ports"`
	LastExit  string `json:"last_exit,omitempty"`
}

func (e *executors) snapshot() []executorView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []executorView
	for c, s := range e.m {
		out = append(out, executorView{Container: c, State: s.state, Pid: s.rec.Pid, Restarts: s.rec.Restarts, Ports: append([]int(nil), s.rec.Ports...), LastExit: s.lastExit})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out
}
