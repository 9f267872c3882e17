package localsched

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"egret/proc"
)

// Executor states, as `egret status` shows them: proc's states, plus these
// for executors adopted from an earlier daemon.
const (
	stateRunning = string(proc.StateRunning)
	stateFailed  = string(proc.StateFailed)
	stateStopped = string(proc.StateStopped)
)

// executors runs one executor process per container through a proc
// supervisor, each marked Detach so that it outlives the daemon (its own
// session, no parent-death signal, left running when the supervisor ends).
// proc restarts a dead executor under the restart policy. Executors adopted
// from an earlier daemon are not proc's children: a watcher per adopted
// executor waits for its exit through a pidfd and then hands the container to
// proc.
type executors struct {
	host   string
	policy restartPolicy
	grace  time.Duration
	// command builds container c's executor spec (Argv, Dir, Env, Logs) for the given ports.
	command func(c int, ports []int) (proc.Spec, error)
	// changed is called (without the lock) whenever a record changes, to persist it.
	changed func()
	log     *log.Logger

	ctx context.Context // the daemon's life: when it ends the executors keep running
	sup *proc.Supervisor
	wg  sync.WaitGroup

	mu sync.Mutex
	m  map[int]*execState
}

type execState struct {
	rec      execRecord
	base     int // restarts carried over from earlier runs of the container
	adopted  bool
	state    string // adopted executors only; proc knows the others'
	lastExit string
	started  chan struct{} // closed at the first start (or failure to start)
	stop     chan struct{} // adopted: closed to stop on purpose
	done     chan struct{} // adopted: closed when the watcher has returned
}

func procName(c int) string { return "container-" + strconv.Itoa(c) }

func containerOf(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "container-")
	if !ok {
		return 0, false
	}
	c, err := strconv.Atoi(s)
	return c, err == nil
}

func newExecutors(ctx context.Context, host string, policy restartPolicy, grace time.Duration, command func(int, []int) (proc.Spec, error), changed func(), l *log.Logger) *executors {
	e := &executors{host: host, policy: policy, grace: grace, command: command, changed: changed, log: l, ctx: ctx, m: map[int]*execState{}}
	// Detached processes are never the guardian's to kill.
	e.sup = proc.New(proc.Options{NoGuardian: true})
	events, unsubscribe := e.sup.Subscribe()
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		if err := e.sup.Run(ctx); err != nil {
			e.log.Printf("supervisor: %v", err)
		}
	}()
	go func() {
		defer e.wg.Done()
		defer unsubscribe()
		for ev := range events {
			e.onEvent(ev)
		}
	}()
	return e
}

// wait returns once the supervisor and every watcher have returned.
func (e *executors) wait() { e.wg.Wait() }

func (e *executors) onEvent(ev proc.Event) {
	c, ok := containerOf(ev.Name)
	if !ok {
		return
	}
	e.mu.Lock()
	s, ok := e.m[c]
	if !ok || s.adopted {
		e.mu.Unlock()
		return
	}
	switch ev.Type {
	case proc.EventStarted:
		st, _ := startTime(ev.Pid)
		s.rec.Pid, s.rec.StartTime, s.rec.Restarts = ev.Pid, st, s.base+ev.Restarts
		e.log.Printf("container %d: executor started, pid %d, ports %v", c, ev.Pid, s.rec.Ports)
	case proc.EventExited:
		if ev.Exit != nil {
			s.lastExit = ev.Exit.String()
		}
		if ev.Backoff > 0 || ev.Reason != "" {
			e.log.Printf("container %d: executor pid %d %s; %s (restart in %v)", c, ev.Pid, s.lastExit, ev.Reason, ev.Backoff)
		}
	case proc.EventFailed:
		s.lastExit = ev.Reason
		e.log.Printf("container %d: executor failed for good: %s", c, ev.Reason)
	case proc.EventStopped:
		e.log.Printf("container %d: executor stopped", c)
	}
	if ev.Type == proc.EventStarted || ev.Type == proc.EventFailed || (ev.Type == proc.EventExited && ev.Exit != nil && ev.Exit.Err != nil) {
		select {
		case <-s.started:
		default:
			close(s.started)
		}
	}
	e.mu.Unlock()
	e.changed()
}

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

func (e *executors) procPolicy() proc.RestartPolicy {
	return proc.RestartPolicy{
		Mode:           proc.RestartAlways,
		InitialBackoff: e.policy.Initial,
		MaxBackoff:     e.policy.Max,
		Jitter:         0.1,
		StableAfter:    time.Minute,
		Budget:         proc.Budget{Restarts: e.policy.Budget, Window: e.policy.Window},
	}
}

// start launches container c's executor through proc (ports nil: reserve new
// ones) and returns once it has started, or with the reason it could not.
func (e *executors) start(c int, ports []int) error {
	ports, err := e.portsFor(c, ports)
	if err != nil {
		return fmt.Errorf("container %d: %w", c, err)
	}
	spec, err := e.command(c, ports)
	if err != nil {
		return fmt.Errorf("container %d: %w", c, err)
	}
	spec.Name = procName(c)
	spec.Detach = true
	spec.Restart = e.procPolicy()
	spec.StopGrace = e.grace
	s := &execState{rec: execRecord{Ports: ports}, started: make(chan struct{})}
	e.mu.Lock()
	if old, ok := e.m[c]; ok && old.state != stateStopped {
		e.mu.Unlock()
		return fmt.Errorf("container %d already has an executor", c)
	} else if ok {
		s.base = old.rec.Restarts
		s.rec.Restarts = s.base
	}
	e.m[c] = s
	e.mu.Unlock()
	if err := e.sup.Start(spec); err != nil {
		e.forget(c, s, err)
		return fmt.Errorf("container %d: %w", c, err)
	}
	select {
	case <-s.started:
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
	for _, st := range e.sup.Snapshot() {
		if st.Name == spec.Name && st.LastExit != nil && st.LastExit.Err != nil {
			return fmt.Errorf("container %d: %v", c, st.LastExit)
		}
		if st.Name == spec.Name && st.State == proc.StateFailed {
			return fmt.Errorf("container %d: executor failed: %s", c, s.lastExit)
		}
	}
	return nil
}

func (e *executors) forget(c int, s *execState, err error) {
	e.mu.Lock()
	s.state = stateFailed
	s.lastExit = err.Error()
	e.mu.Unlock()
	e.changed()
}

// adopt watches an executor started by an earlier daemon.
func (e *executors) adopt(c int, rec execRecord) {
	s := &execState{rec: rec, adopted: true, state: stateRunning, started: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	close(s.started)
	e.mu.Lock()
	e.m[c] = s
	e.mu.Unlock()
	e.log.Printf("container %d: adopted executor pid %d", c, rec.Pid)
	e.wg.Add(1)
	go e.watchAdopted(c, s)
}

// watchAdopted waits for an adopted executor's exit; unless it was stopped on
// purpose, proc starts the container again after the first backoff.
func (e *executors) watchAdopted(c int, s *execState) {
	defer e.wg.Done()
	defer close(s.done)
	if err := waitExit(e.ctx, s.rec.Pid); err != nil {
		return // the daemon is ending: the executor keeps running
	}
	select {
	case <-s.stop:
		return
	default:
	}
	e.log.Printf("container %d: adopted executor pid %d exited; starting it again in %v", c, s.rec.Pid, e.policy.Initial)
	e.mu.Lock()
	s.state = stateStopped
	s.rec.Restarts++
	ports := s.rec.Ports
	e.mu.Unlock()
	t := time.NewTimer(e.policy.Initial)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
		return
	case <-e.ctx.Done():
		return
	}
	go func() {
		if err := e.start(c, ports); err != nil {
			e.log.Printf("%v", err)
		}
	}()
}

// stop stops container c's executor (stop signal to its group, SIGKILL after
// the grace) and returns once it is gone (or ctx ends).
func (e *executors) stop(ctx context.Context, c int) error {
	e.mu.Lock()
	s, ok := e.m[c]
	e.mu.Unlock()
	if !ok {
		return nil
	}
	if s.adopted {
		if err := e.stopAdopted(ctx, s); err != nil {
			return err
		}
	} else if err := e.sup.Remove(ctx, procName(c)); err != nil && !errors.Is(err, proc.ErrUnknown) {
		return fmt.Errorf("container %d: %w", c, err)
	}
	e.mu.Lock()
	pid := s.rec.Pid
	s.state = stateStopped
	e.mu.Unlock()
	// What the executor left in its process group goes too.
	killGroup(pid, syscall.SIGKILL)
	e.changed()
	return nil
}

func (e *executors) stopAdopted(ctx context.Context, s *execState) error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	e.mu.Lock()
	pid, st := s.rec.Pid, s.rec.StartTime
	e.mu.Unlock()
	if !alive(pid, st) {
		return nil
	}
	killGroup(pid, syscall.SIGTERM)
	t := time.NewTimer(e.grace)
	defer t.Stop()
	gone := make(chan struct{})
	go func() { waitExit(ctx, pid); close(gone) }()
	select {
	case <-gone:
		return nil
	case <-t.C:
		e.log.Printf("executor pid %d still running after %v, killing it", pid, e.grace)
		killGroup(pid, syscall.SIGKILL)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopAll stops every container at once.
func (e *executors) stopAll(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, c := range e.containers() {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			if err := e.stop(ctx, c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// restart stops container c and starts it again on the same ports (when free).
func (e *executors) restart(ctx context.Context, c int) error {
	e.mu.Lock()
	s, ok := e.m[c]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("no container %d", c)
	}
	if err := e.stop(ctx, c); err != nil {
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
	for c, s := range e.m {
		if s.state != stateStopped {
			out = append(out, c)
		}
	}
	sort.Ints(out)
	return out
}

// executorView is one executor as status shows it.
type executorView struct {
	Container  int     `json:"container"`
	State      string  `json:"state"`
	Pid        int     `json:"pid"`
	Restarts   int     `json:"restarts"`
	Adopted    bool    `json:"adopted,omitempty"`
	Ports      []int   `json:"ports"`
	LastExit   string  `json:"last_exit,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSBytes   uint64  `json:"rss_bytes"`
}

func (e *executors) snapshot() []executorView {
	byName := map[string]proc.Status{}
	for _, st := range e.sup.Snapshot() {
		byName[st.Name] = st
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []executorView
	for c, s := range e.m {
		v := executorView{Container: c, State: s.state, Pid: s.rec.Pid, Restarts: s.rec.Restarts, Adopted: s.adopted, Ports: append([]int(nil), s.rec.Ports...), LastExit: s.lastExit}
		if st, ok := byName[procName(c)]; ok && !s.adopted {
			v.State, v.Pid, v.Restarts = string(st.State), st.Pid, s.base+st.Restarts
			v.CPUSeconds, v.RSSBytes = st.CPU.Seconds(), st.RSS
			if st.LastExit != nil {
				v.LastExit = st.LastExit.String()
			}
		} else if !s.adopted && s.state == "" {
			v.State = stateStopped
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out
}
