package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"egret/proc"
	"egret/sandbox"
)

// PlanWatcher is what the runtime needs of a state manager: the topology's
// packing plan now (nil when there is none) and again after every change,
// until ctx ends.
type PlanWatcher interface {
	WatchPackingPlan(ctx context.Context, topology string) (<-chan *Plan, error)
}

// Options configure a Container.
type Options struct {
	Flags *Flags
	// Dir is the sandbox, the cwd of every daemon; "" means the current directory.
	Dir string
	// Plans delivers the packing plan; nil opens the state manager the flags name.
	Plans PlanWatcher
	// Log receives the executor's own log; nil means appending to
	// <Dir>/heron-executor-<shard>.stdout.
	Log io.Writer
	// Env is the environment the daemons inherit; nil means os.Environ().
	Env []string
	// Host is advertised by tmanager and stmgr; "" means Heron's detection.
	Host string
	// NoGuardian is passed to proc (see proc.Options).
	NoGuardian bool
	// OnStatus, if set, is called with every status written.
	OnStatus func(StatusFile)
}

// Container runs the daemons of one shard.
type Container struct {
	opts    Options
	f       *Flags
	dir     string
	sb      *sandbox.Sandbox // the layout of dir: pid, status and executor files
	logging Logging
	host    string
	env     []string

	running map[string][]string // name → argv of what the supervisor runs; Run's goroutine only

	mu     sync.Mutex
	status StatusFile
	log    io.Writer
}

// New checks the options; nothing starts before Run.
func New(opts Options) (*Container, error) {
	if opts.Flags == nil {
		return nil, errors.New("container: no flags")
	}
	dir := opts.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		dir = wd
	}
	sb, err := sandbox.New(dir)
	if err != nil {
		return nil, err
	}
	dir = sb.Root()
	lg, err := LoadLogging(inDir(dir, opts.Flags.HeronInternalsConfigFile))
	if err != nil {
		return nil, fmt.Errorf("flag --heron-internals-config-file: %w", err)
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	host := opts.Host
	if host == "" {
		host = DetectHost()
	}
	f := *opts.Flags
	f.applyDefaults()
	c := &Container{opts: opts, f: &f, dir: dir, sb: sb, logging: lg, host: host, env: env, log: opts.Log,
		running: map[string][]string{}}
	c.status = StatusFile{
		FormatVersion: StatusFormatVersion,
		Topology:      c.f.TopologyName,
		TopologyID:    c.f.TopologyID,
		Shard:         c.f.Shard,
		ExecutorPID:   os.Getpid(),
		State:         "waiting",
		Processes:     []ProcessStatus{},
	}
	return c, nil
}

func inDir(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Status returns the current status (the content of the status file).
func (c *Container) Status() StatusFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Processes = append([]ProcessStatus(nil), s.Processes...)
	return s
}

// Processes computes this shard's processes for plan, probing the JVM
// version when Java instances need it.
func (c *Container) Processes(ctx context.Context, plan *Plan, javaVersion *string) ([]Process, error) {
	if _, ok := plan.Container(c.f.Shard); ok && c.f.Shard != 0 {
		if err := unpackTopology(c.f, c.dir); err != nil {
			return nil, err
		}
	}
	if *javaVersion == "" && needsJava(c.f, plan) {
		v, err := probeJava(ctx, c.f, c.dir, c.env)
		if err != nil {
			return nil, err
		}
		*javaVersion = v
		c.logf("detected JVM version %s", v)
	}
	return Processes(c.f, plan, Runtime{
		Host: c.host, LogDir: c.logging.Dir, JavaVersion: *javaVersion, Dir: c.dir,
		Env: c.env, HeapCheck: envSet(c.env, "ENABLE_HEAPCHECK"),
	})
}

func envSet(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

func (c *Container) logf(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != nil {
		fmt.Fprintf(c.log, "%s %s\n", time.Now().Format("2006-01-02 15:04:05.000"), fmt.Sprintf(format, a...))
	}
}

// initialize prepares the sandbox as Heron's executor does: the log
// directory, permissions, executable daemons and the executor's pid file.
func (c *Container) initialize() error {
	logDir := inDir(c.dir, c.logging.Dir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	if err := chmodAdd(c.dir, 0o555); err != nil {
		return err
	}
	if err := chmodAdd(logDir, 0o111); err != nil {
		return err
	}
	for _, b := range []struct{ flag, path string }{
		{"--tmanager-binary", c.f.TManagerBinary},
		{"--stmgr-binary", c.f.StmgrBinary},
		{"--heron-shell-binary", c.f.HeronShellBinary},
	} {
		p := inDir(c.dir, b.path)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("flag %s: %w", b.flag, err)
		}
		if st.Mode()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode()|0o111); err != nil {
				return fmt.Errorf("flag %s: %w", b.flag, err)
			}
		}
	}
	return c.writePid(fmt.Sprintf("heron-executor-%d", c.f.Shard), os.Getpid())
}

func chmodAdd(p string, bits os.FileMode) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.Mode()&bits != bits {
		if err := os.Chmod(p, st.Mode()|bits); err != nil {
			return err
		}
	}
	return nil
}

func (c *Container) writePid(name string, pid int) error {
	return writeAtomic(c.sb.PidFile(name), []byte(strconv.Itoa(pid)))
}

// spec turns a process into what proc supervises.
func (c *Container) spec(p Process) proc.Spec {
	env := map[string]string{}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	s := proc.Spec{
		Name: p.Name,
		Argv: p.Argv,
		Env:  env,
		Dir:  p.Dir,
		Restart: proc.RestartPolicy{
			Mode:           proc.RestartAlways,
			InitialBackoff: c.f.BackoffMin,
			MaxBackoff:     c.f.BackoffMax,
			Jitter:         0.2,
			StableAfter:    time.Minute,
			Budget:         proc.Budget{Restarts: c.f.RestartBudget.Restarts, Window: c.f.RestartBudget.Window},
		},
		StopGrace: c.f.StopGrace,
		Logs: proc.LogPolicy{
			Dir:      inDir(c.dir, c.logging.Dir),
			MaxSize:  c.logging.MaxBytes,
			MaxFiles: c.logging.MaxFiles,
		},
	}
	hc := func() *proc.HealthCheck {
		timeout := 5 * time.Second
		if c.f.HealthInterval < timeout {
			timeout = c.f.HealthInterval
		}
		return &proc.HealthCheck{Delay: min(time.Second, c.f.HealthInterval), Interval: c.f.HealthInterval, Timeout: timeout,
			ConsecutiveFailures: 3, Grace: c.f.HealthGrace, Action: proc.HealthRestart}
	}
	switch {
	case p.HealthURL != "":
		s.Health = hc()
		s.Health.HTTP = p.HealthURL
	case p.TCPPort != 0:
		s.Health = hc()
		s.Health.TCP = "127.0.0.1:" + strconv.Itoa(p.TCPPort)
	}
	return s
}

// Run prepares the sandbox, follows the packing plan and supervises the
// daemons until ctx ends (then stops them all, SIGTERM then SIGKILL after
// the grace) or a daemon exhausts its restart budget (an error).
func (c *Container) Run(ctx context.Context) (err error) {
	if c.opts.Log != nil {
		c.log = c.opts.Log
	} else {
		lf, err := os.OpenFile(c.sb.ExecutorStdout(c.f.Shard),
			os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("executor log: %w", err)
		}
		defer lf.Close()
		c.mu.Lock()
		c.log = lf
		c.mu.Unlock()
	}
	defer func() {
		if err != nil {
			c.logf("exiting: %v", err)
			c.setState("failed", err.Error())
		} else {
			c.setState("stopped", "")
		}
	}()
	c.logf("heron-executor (egret) shard %d of %s (%s) starting, pid %d, host %s", c.f.Shard, c.f.TopologyName, c.f.TopologyID, os.Getpid(), c.host)
	if err := c.initialize(); err != nil {
		return err
	}
	c.writeStatus()

	plans := c.opts.Plans
	if plans == nil {
		w, closer, err := openPlanWatcher(ctx, c.f)
		if err != nil {
			return fmt.Errorf("state manager %s: %w", c.f.StateManagerConnection, err)
		}
		defer closer()
		plans = w
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	planCh, err := plans.WatchPackingPlan(wctx, c.f.TopologyName)
	if err != nil {
		return fmt.Errorf("watch the packing plan of %s: %w", c.f.TopologyName, err)
	}
	defer func() {
		// The watch's goroutine is gone once it closes its channel.
		stopWatch()
		for range planCh {
		}
	}()

	sup := proc.New(proc.Options{LogDir: inDir(c.dir, c.logging.Dir), NoGuardian: c.opts.NoGuardian})
	events, unsubscribe := sup.Subscribe()
	defer unsubscribe()
	supCtx, stopSup := context.WithCancel(context.Background())
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(supCtx) }()
	shutdown := func() error {
		c.setState("stopping", "")
		c.logf("stopping every process")
		stopSup()
		err := <-supDone
		for ev := range events { // drain to the close, recording the final exits
			c.onEvent(ev)
		}
		c.refresh(sup, c.running)
		return err
	}

	ticker := time.NewTicker(10 * time.Second)
	defer ticker.Stop()
	running := c.running
	javaVersion := ""
	for {
		select {
		case <-ctx.Done():
			c.logf("received stop request")
			return shutdown()
		case err := <-supDone:
			supDone <- err
			return fmt.Errorf("supervisor stopped: %v", err)
		case plan, ok := <-planCh:
			if !ok {
				if ctx.Err() != nil {
					continue
				}
				shutdown()
				return errors.New("packing plan watch ended")
			}
			if err := c.apply(ctx, sup, plan, running, &javaVersion); err != nil {
				shutdown()
				return err
			}
			c.refresh(sup, running)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			c.onEvent(ev)
			if ev.Type == proc.EventFailed {
				err := fmt.Errorf("%s failed: %s", ev.Name, ev.Reason)
				shutdown()
				return err
			}
			c.refresh(sup, running)
		case <-ticker.C:
			c.refresh(sup, running)
		}
	}
}

// apply makes the supervised set match plan (reference section 1.8):
// unchanged processes keep running, stream managers always restart,
// removed ones stop, new ones start; stops come before starts.
func (c *Container) apply(ctx context.Context, sup *proc.Supervisor, plan *Plan, running map[string][]string, javaVersion *string) error {
	if plan == nil {
		plan = &Plan{}
	}
	desired, err := c.Processes(ctx, plan, javaVersion)
	if err != nil {
		return err
	}
	ch := Diff(running, desired)
	c.logf("packing plan %q: keep %v, stop %v, start %v", plan.ID, ch.Keep, ch.Stop, names(ch.Start))
	c.mu.Lock()
	c.status.PackingPlanID = plan.ID
	c.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ch.Stop))
	for i, name := range ch.Stop {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sup.Remove(ctx, name)
		}()
	}
	wg.Wait()
	for i, name := range ch.Stop {
		if errs[i] != nil && !errors.Is(errs[i], proc.ErrUnknown) {
			return fmt.Errorf("stop %s: %w", name, errs[i])
		}
		delete(running, name)
	}
	for _, p := range ch.Start {
		if err := sup.Start(c.spec(p)); err != nil {
			return fmt.Errorf("start %s: %w", p.Name, err)
		}
		running[p.Name] = p.Argv
	}
	if len(desired) == 0 {
		c.setState("waiting", "")
	} else {
		c.setState("running", "")
	}
	return nil
}

func names(ps []Process) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// onEvent logs an event and keeps the pid files current.
func (c *Container) onEvent(ev proc.Event) {
	switch ev.Type {
	case proc.EventStarted:
		c.logf("%s started (pid=%d, restarts=%d)", ev.Name, ev.Pid, ev.Restarts)
		if err := c.writePid(ev.Name, ev.Pid); err != nil {
			c.logf("%s: %v", ev.Name, err)
		}
	case proc.EventExited:
		if len(ev.Lines) == 0 {
			c.logf("%s exited with %s; restarting in %s", ev.Name, exitString(ev.Exit), ev.Backoff.Round(time.Millisecond))
		} else {
			c.logf("%s exited with %s", ev.Name, exitString(ev.Exit))
		}
	case proc.EventFailed:
		c.logf("%s exited too many times: %s; its last output:", ev.Name, ev.Reason)
		for _, l := range ev.Lines {
			c.logf("%s stdout: %s", ev.Name, l)
		}
	case proc.EventUnhealthy:
		c.logf("%s is unhealthy: %s", ev.Name, ev.Reason)
	case proc.EventHealthy:
		c.logf("%s is healthy", ev.Name)
	case proc.EventStopped:
		c.logf("%s stopped (%s)", ev.Name, exitString(ev.Exit))
	}
}

func exitString(e *proc.Exit) string {
	if e == nil {
		return "no exit"
	}
	return e.String()
}

// refresh rebuilds the status from the supervisor and rewrites the file.
func (c *Container) refresh(sup *proc.Supervisor, running map[string][]string) {
	var ps []ProcessStatus
	for _, st := range sup.Snapshot() {
		p := ProcessStatus{
			Name: st.Name, PID: st.Pid, State: string(st.State), Restarts: st.Restarts,
			Started: st.StartTime, Health: string(st.Health),
			CPUSeconds: st.CPU.Seconds(), RSS: st.RSS, Argv: running[st.Name],
		}
		if st.LastExit != nil {
			e := &Exit{Code: st.LastExit.Code, Error: errString(st.LastExit.Err)}
			if st.LastExit.Signal != 0 {
				e.Code = -1
				e.Signal = st.LastExit.Signal.String()
			}
			p.LastExit = e
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	if ps == nil {
		ps = []ProcessStatus{}
	}
	c.mu.Lock()
	c.status.Processes = ps
	c.mu.Unlock()
	c.writeStatus()
}

func (c *Container) setState(state, errText string) {
	c.mu.Lock()
	c.status.State = state
	c.status.Error = errText
	c.mu.Unlock()
	c.writeStatus()
}

func (c *Container) writeStatus() {
	c.mu.Lock()
	c.status.Updated = time.Now().UTC()
	s := c.status
	s.Processes = append([]ProcessStatus(nil), s.Processes...)
	c.mu.Unlock()
	b, err := jsonIndent(s)
	if err == nil {
		err = writeAtomic(c.sb.StatusFile(c.f.Shard), b)
	}
	if err != nil {
		c.logf("status file: %v", err)
	}
	if c.opts.OnStatus != nil {
		c.opts.OnStatus(s)
	}
}

// DryRun returns the processes Run would start for the current packing plan,
// without starting any (only the JVM-version probe runs, when Java instances
// need it).
func (c *Container) DryRun(ctx context.Context) ([]Process, error) {
	plans := c.opts.Plans
	if plans == nil {
		w, closer, err := openPlanWatcher(ctx, c.f)
		if err != nil {
			return nil, fmt.Errorf("state manager %s: %w", c.f.StateManagerConnection, err)
		}
		defer closer()
		plans = w
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := plans.WatchPackingPlan(wctx, c.f.TopologyName)
	if err != nil {
		return nil, fmt.Errorf("read the packing plan of %s: %w", c.f.TopologyName, err)
	}
	var plan *Plan
	select {
	case plan = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if plan == nil {
		return []Process{}, nil
	}
	jv := ""
	ps, err := c.Processes(ctx, plan, &jv)
	if ps == nil {
		ps = []Process{}
	}
	return ps, err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
