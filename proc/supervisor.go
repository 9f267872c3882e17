package proc

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	gproc "github.com/shirou/gopsutil/v3/process"
	"golang.org/x/sys/unix"
)

// TreeEnv is the environment variable that marks every process of a
// supervisor's tree (children and the descendants that keep their
// environment); the guardian kills what carries its supervisor's token.
const TreeEnv = "EGRET_PROC_TREE"

// Supervisor runs a set of processes. Its methods are safe for concurrent use.
type Supervisor struct {
	opts  Options
	now   func() time.Time
	rnd   func() float64
	token string

	mu      sync.Mutex
	procs   map[string]*process
	running bool
	closing bool
	done    bool
	subs    map[*subscriber]struct{}
	guard   *guardian
	wg      sync.WaitGroup // timers in flight, health checks, drains
	pumps   sync.WaitGroup
	hctx    context.Context // cancelled at shutdown: in-flight health checks
	hcancel context.CancelFunc
	live    map[*os.File]struct{} // pipe read ends still being pumped
}

// process is one supervised process across its runs.
type process struct {
	spec      Spec
	state     State
	pid       int // pgid too: each child leads its own group
	start     time.Time
	restarts  int
	lastExit  *Exit
	health    Health
	tracker   restartTracker
	htrack    healthTracker
	sink      *logSink
	run       int           // generation of the current run; stale timers and results check it
	exited    chan struct{} // closed when the current run is reaped
	pumpsDone chan struct{} // closed when the current run's pipes reached EOF
	timer     *time.Timer   // backoff
	killTimer *time.Timer   // stop grace
	htimer    *time.Timer   // next health check
	stopping  bool          // stop requested: do not restart
	healthHit bool          // stopped by the health check: restart per policy
	removed   bool
}

// New returns a supervisor for opts.Specs; nothing starts before Run.
func New(opts Options) *Supervisor {
	s := &Supervisor{opts: opts, now: opts.Now, rnd: opts.Rand, procs: map[string]*process{}, subs: map[*subscriber]struct{}{}, live: map[*os.File]struct{}{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rnd == nil {
		s.rnd = rand.Float64
	}
	var b [12]byte
	_, _ = cryptoRead(b[:])
	s.token = hex.EncodeToString(b[:])
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	return s
}

var cryptoRead = crand.Read

// Run starts the processes and supervises them until ctx is done, then stops
// every process in parallel (each within its stop grace) and returns once all
// of them, the guardian and every goroutine it owns are gone.
func (s *Supervisor) Run(ctx context.Context) error {
	for i := range s.opts.Specs {
		if err := s.Start(s.opts.Specs[i]); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.running || s.done {
		s.mu.Unlock()
		return errors.New("proc: Run called twice")
	}
	s.running = true
	acquire()
	if !s.opts.NoGuardian {
		g, err := startGuardian(s.token)
		if err != nil {
			s.running, s.done = false, true
			s.mu.Unlock()
			release()
			return err
		}
		s.guard = g
	}
	for _, name := range s.sortedNames() {
		if p := s.procs[name]; p.state == "" {
			s.startLocked(p)
		}
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.shutdown()
	return nil
}

func (s *Supervisor) shutdown() {
	s.mu.Lock()
	s.closing = true
	s.hcancel()
	var waits []<-chan struct{}
	var longest time.Duration
	for _, p := range s.procs {
		s.cancelTimer(&p.timer)
		s.cancelTimer(&p.htimer)
		if p.spec.Detach && !s.opts.StopDetached {
			continue
		}
		if ch := s.stopLocked(p); ch != nil {
			waits = append(waits, ch)
			longest = max(longest, p.spec.stopGrace())
		}
	}
	s.mu.Unlock()
	bound := s.opts.ShutdownWait
	if bound <= 0 {
		bound = 5 * time.Second
	}
	deadline := time.NewTimer(longest + bound)
	for _, ch := range waits {
		select {
		case <-ch:
		case <-deadline.C:
		}
	}
	deadline.Stop()

	s.mu.Lock()
	g := s.guard
	s.guard = nil
	for _, p := range s.procs {
		s.cancelTimer(&p.killTimer)
	}
	s.mu.Unlock()
	if g != nil {
		g.close(bound) // the guardian sweeps what escaped the groups, and exits
	}
	// Pipes held open by a surviving descendant must not keep a pump alive.
	s.mu.Lock()
	for f := range s.live {
		_ = f.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	s.pumps.Wait()
	s.wg.Wait()
	release()

	s.mu.Lock()
	s.running, s.done = false, true
	for _, p := range s.procs {
		p.sink.close()
	}
	for sub := range s.subs {
		sub.finish()
	}
	s.mu.Unlock()
}

func (s *Supervisor) sortedNames() []string {
	names := make([]string, 0, len(s.procs))
	for n := range s.procs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Start adds a process and starts it (at once if Run is running, or when Run
// begins).
func (s *Supervisor) Start(spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.closing {
		return ErrClosed
	}
	if _, ok := s.procs[spec.Name]; ok {
		return fmt.Errorf("start %s: %w", spec.Name, ErrExists)
	}
	p := &process{spec: spec, sink: s.newSink(&spec)}
	s.procs[spec.Name] = p
	if s.running {
		s.startLocked(p)
	}
	return nil
}

func (s *Supervisor) newSink(spec *Spec) *logSink {
	if spec.Detach {
		return newLogSink("", "", 0, 0)
	}
	out, errp := s.logPaths(spec)
	size, files := spec.Logs.MaxSize, spec.Logs.MaxFiles
	if size == 0 {
		size = DefaultLogMaxSize
	}
	if files == 0 {
		files = DefaultLogMaxFiles
	}
	return newLogSink(out, errp, size, files)
}

func (s *Supervisor) logPaths(spec *Spec) (stdout, stderr string) {
	dir := spec.Logs.Dir
	if dir == "" {
		dir = s.opts.LogDir
	}
	stdout, stderr = spec.Logs.Stdout, spec.Logs.Stderr
	if stdout == "" && dir != "" {
		stdout = filepath.Join(dir, spec.Name+".stdout")
	}
	if stderr == "" && dir != "" {
		stderr = filepath.Join(dir, spec.Name+".stderr")
	}
	return stdout, stderr
}

// startLocked begins a run of p.
func (s *Supervisor) startLocked(p *process) {
	p.run++
	p.stopping, p.healthHit = false, false
	p.state = StateStarting
	p.htrack = healthTracker{}
	p.health = HealthUnknown
	now := s.now()
	p.start = now
	if !p.spec.Detach {
		p.sink.ensure()
	}
	pid, pipes, err := s.fork(p)
	if err != nil {
		p.pid = 0
		s.afterExit(p, Exit{Err: err}, now)
		return
	}
	p.pid = pid
	p.state = StateRunning
	p.exited = make(chan struct{})
	if s.guard != nil && !p.spec.Detach {
		s.guard.add(pid)
	}
	p.pumpsDone = make(chan struct{})
	if len(pipes) > 0 {
		var pw sync.WaitGroup
		for i, f := range pipes {
			s.live[f] = struct{}{}
			s.pumps.Add(1)
			pw.Add(1)
			go func() {
				defer s.pumps.Done()
				defer pw.Done()
				pump(f, p.sink, i)
				s.mu.Lock()
				delete(s.live, f)
				s.mu.Unlock()
			}()
		}
		done := p.pumpsDone
		s.pumps.Add(1)
		go func() { defer s.pumps.Done(); pw.Wait(); close(done) }()
	} else {
		close(p.pumpsDone)
	}
	s.emit(Event{Type: EventStarted, Name: p.spec.Name, Pid: pid, Restarts: p.restarts})
	if h := p.spec.Health; h != nil {
		s.scheduleCheck(p, h.Delay)
	}
}

// fork starts the process; for a supervised (not detached) process it
// returns the read ends of its stdout and stderr pipes.
func (s *Supervisor) fork(p *process) (int, []*os.File, error) {
	spec := &p.spec
	var extra []string
	if !spec.Detach {
		extra = append(extra, TreeEnv+"="+s.token)
	}
	env := spec.environ(extra...)
	path, err := lookPath(spec.Argv[0], envValue(env, "PATH"))
	if err != nil {
		return 0, nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	files := []uintptr{devnull.Fd(), 0, 0}
	var reads []*os.File
	if spec.Detach {
		out, errp := s.logPaths(spec)
		for i, path := range []string{out, errp} {
			f := devnull
			if path != "" {
				_ = os.MkdirAll(filepath.Dir(path), 0o755)
				lf, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return 0, nil, fmt.Errorf("open log: %w", err)
				}
				defer lf.Close()
				f = lf
			}
			files[i+1] = f.Fd()
		}
	} else {
		var writes []*os.File
		defer func() {
			for _, w := range writes {
				w.Close()
			}
		}()
		for i := 1; i <= 2; i++ {
			var fds [2]int
			if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
				for _, r := range reads {
					r.Close()
				}
				return 0, nil, fmt.Errorf("pipe: %w", err)
			}
			_ = unix.SetNonblock(fds[0], true)
			reads = append(reads, os.NewFile(uintptr(fds[0]), spec.Name+".out"))
			w := os.NewFile(uintptr(fds[1]), spec.Name+".in")
			writes = append(writes, w)
			files[i] = w.Fd()
		}
	}
	run := p.run
	pid, err := spawn(&spawnReq{path: path, argv: spec.Argv, env: env, dir: spec.Dir, files: files, setsid: spec.Detach, pdeath: !spec.Detach,
		onExit: func(ws unix.WaitStatus) { s.onExit(p, run, ws) }})
	if err != nil {
		for _, r := range reads {
			r.Close()
		}
		return 0, nil, fmt.Errorf("start %s: %w", spec.Argv[0], err)
	}
	return pid, reads, nil
}

func exitOf(ws unix.WaitStatus) Exit {
	if ws.Signaled() {
		return Exit{Signal: ws.Signal()}
	}
	return Exit{Code: ws.ExitStatus()}
}

// onExit runs on the reaper when a run of p ends.
func (s *Supervisor) onExit(p *process, run int, ws unix.WaitStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run != p.run || p.state == StateStopped || p.pid == 0 {
		return
	}
	pgid := p.pid
	// What the leader left in its group goes with it.
	killGroup(pgid, syscall.SIGKILL)
	if s.guard != nil && !p.spec.Detach {
		s.guard.remove(pgid)
	}
	s.cancelTimer(&p.killTimer)
	s.cancelTimer(&p.htimer)
	p.pid = 0
	close(p.exited)
	s.afterExit(p, exitOf(ws), s.now())
}

// afterExit decides what follows a run that ended (or failed to start).
func (s *Supervisor) afterExit(p *process, exit Exit, now time.Time) {
	p.lastExit = &exit
	name := p.spec.Name
	if p.stopping && !p.healthHit || s.closing {
		p.state = StateStopped
		s.emit(Event{Type: EventExited, Name: name, Exit: &exit, Restarts: p.restarts})
		s.emit(Event{Type: EventStopped, Name: name, Exit: &exit, Restarts: p.restarts})
		return
	}
	d := p.tracker.decide(p.spec.Restart, exit, p.start, now, s.rnd())
	switch {
	case d.restart:
		p.state = StateBackoff
		p.restarts++
		ev := Event{Type: EventExited, Name: name, Exit: &exit, Restarts: p.restarts - 1, Backoff: d.delay, WillRestart: true}
		if exit.Err != nil {
			ev.Reason = exit.String()
		}
		if p.healthHit {
			ev.Reason = "health check failed"
		}
		s.emit(ev)
		if d.delay <= 0 {
			s.startLocked(p)
			return
		}
		run := p.run
		p.timer = s.after(d.delay, func() {
			p.timer = nil
			if p.run == run && p.state == StateBackoff && !s.closing {
				s.startLocked(p)
			}
		})
	case d.failed:
		p.state = StateFailed
		s.emitAfterDrain(p, Event{Type: EventExited, Name: name, Exit: &exit, Restarts: p.restarts},
			Event{Type: EventFailed, Name: name, Exit: &exit, Restarts: p.restarts, Reason: d.reason})
	default:
		p.state = StateExited
		s.emitAfterDrain(p, Event{Type: EventExited, Name: name, Exit: &exit, Restarts: p.restarts, Reason: d.reason})
	}
}

// emitAfterDrain publishes events that carry the last output lines once the
// run's pipes are drained (bounded: a descendant may hold them open).
func (s *Supervisor) emitAfterDrain(p *process, evs ...Event) {
	done := p.pumpsDone
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if done != nil {
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-done:
			case <-t.C:
			}
			t.Stop()
		}
		lines := p.sink.last()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ev := range evs {
			ev.Lines = lines
			s.emit(ev)
		}
	}()
}

// stopLocked starts stopping p and returns a channel closed when it is gone,
// or nil if it is not running.
func (s *Supervisor) stopLocked(p *process) <-chan struct{} {
	s.cancelTimer(&p.htimer)
	if p.state == StateBackoff {
		s.cancelTimer(&p.timer)
		p.state = StateStopped
		s.emit(Event{Type: EventStopped, Name: p.spec.Name, Restarts: p.restarts})
		return nil
	}
	if p.state != StateRunning && p.state != StateStopping {
		if p.state == StateFailed || p.state == StateExited || p.state == "" {
			p.state = StateStopped
		}
		return nil
	}
	p.stopping = true
	if p.state == StateRunning {
		p.state = StateStopping
		killGroup(p.pid, p.spec.stopSignal())
		killGroup(p.pid, syscall.SIGCONT)
		run := p.run
		p.killTimer = s.after(p.spec.stopGrace(), func() {
			p.killTimer = nil
			if p.run == run && p.pid != 0 {
				killGroup(p.pid, syscall.SIGKILL)
			}
		})
	}
	return p.exited
}

// Stop stops a process (stop signal, grace, SIGKILL) and waits until it is
// gone or ctx is done. The process stays known, in state stopped, and can be
// started again with Restart.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	s.mu.Lock()
	p, ok := s.procs[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("stop %s: %w", name, ErrUnknown)
	}
	p.healthHit = false // a stop on request is not followed by a restart
	ch := s.stopLocked(p)
	s.mu.Unlock()
	return waitGone(ctx, name, ch)
}

func waitGone(ctx context.Context, name string, ch <-chan struct{}) error {
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", name, ctx.Err())
	}
}

// Restart stops a process if it runs and starts it again at once, resetting
// its backoff, its budget and a failed state.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	if err := s.Stop(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("restart %s: %w", name, ErrUnknown)
	}
	if s.closing || s.done {
		return ErrClosed
	}
	if p.state == StateRunning || p.state == StateStarting {
		return nil // someone else restarted it meanwhile
	}
	p.tracker.reset()
	if s.running {
		p.restarts++
		s.startLocked(p)
	} else {
		p.state = ""
	}
	return nil
}

// Remove stops a process and forgets it.
func (s *Supervisor) Remove(ctx context.Context, name string) error {
	if err := s.Stop(ctx, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.procs[name]; ok && p.state != StateRunning && p.state != StateStarting {
		p.removed = true
		p.sink.close()
		delete(s.procs, name)
	}
	return nil
}

// Replace makes specs the whole set: processes whose spec is unchanged keep
// running, removed ones are stopped (in parallel), changed ones are stopped
// and started with the new spec, new ones are started.
func (s *Supervisor) Replace(ctx context.Context, specs []Spec) error {
	want := make(map[string]*Spec, len(specs))
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return err
		}
		if _, dup := want[specs[i].Name]; dup {
			return fmt.Errorf("replace: process %q given twice", specs[i].Name)
		}
		want[specs[i].Name] = &specs[i]
	}
	s.mu.Lock()
	var drop []string
	for name, p := range s.procs {
		if w, ok := want[name]; !ok || !w.Equal(&p.spec) {
			drop = append(drop, name)
		}
	}
	s.mu.Unlock()
	errs := make([]error, len(drop))
	var wg sync.WaitGroup
	for i, name := range drop {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Remove(ctx, name) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	for _, sp := range specs {
		s.mu.Lock()
		_, have := s.procs[sp.Name]
		s.mu.Unlock()
		if !have {
			if err := s.Start(sp); err != nil {
				return fmt.Errorf("replace: %w", err)
			}
		}
	}
	return nil
}

// Snapshot returns the status of every process, sorted by name.
func (s *Supervisor) Snapshot() []Status {
	s.mu.Lock()
	out := make([]Status, 0, len(s.procs))
	for _, name := range s.sortedNames() {
		p := s.procs[name]
		st := Status{Name: name, State: p.state, Pid: p.pid, StartTime: p.start, Restarts: p.restarts, Health: p.health, Detach: p.spec.Detach}
		if st.State == "" {
			st.State = StateStarting
		}
		if p.lastExit != nil {
			e := *p.lastExit
			st.LastExit = &e
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	for i := range out {
		if out[i].Pid == 0 {
			continue
		}
		// Not gproc.NewProcess: it checks the pid with os.FindProcess, which
		// since Go 1.23 opens a pidfd that nothing releases before a GC, so
		// every snapshot leaked one descriptor per process (found by make chaos).
		pr := &gproc.Process{Pid: int32(out[i].Pid)}
		if t, err := pr.Times(); err == nil {
			out[i].CPU = time.Duration((t.User + t.System) * float64(time.Second))
		}
		if m, err := pr.MemoryInfo(); err == nil {
			out[i].RSS = m.RSS
		}
	}
	return out
}

// LastLines returns the last lines of a process's output.
func (s *Supervisor) LastLines(name string) ([]string, error) {
	s.mu.Lock()
	p, ok := s.procs[name]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrUnknown)
	}
	return p.sink.last(), nil
}

// after runs fn under s.mu after d, accounted in s.wg until it ran or was
// cancelled with cancelTimer.
func (s *Supervisor) after(d time.Duration, fn func()) *time.Timer {
	s.wg.Add(1)
	return time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		fn()
	})
}

func (s *Supervisor) cancelTimer(t **time.Timer) {
	if *t != nil && (*t).Stop() {
		s.wg.Done()
	}
	*t = nil
}
