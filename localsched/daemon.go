package localsched

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"egret/heron/container"
	"egret/heron/model"
	"egret/proc"

	"github.com/gofrs/flock"
)

// daemon is one topology's running scheduler.
type daemon struct {
	opts     Options
	settings settings
	wd       workdir
	st       stateTree
	log      *log.Logger
	execs    *executors
	endpoint string
	li       launchInfo

	planMu sync.Mutex
	plan   *model.PackingPlan // the plan executors are launched with

	persistMu sync.Mutex

	// opMu serializes kill, restart and update.
	opMu     sync.Mutex
	killOnce sync.Once
	killed   chan struct{}
}

// Run is the daemon: it returns when the topology is killed or ctx ends (its
// executors keep running then, to be adopted by the next daemon).
func Run(ctx context.Context, opts Options) (err error) {
	logw := opts.Log
	if logw == nil {
		logw = os.Stderr
	}
	l := log.New(logw, "", log.LstdFlags|log.Lmicroseconds)
	ready := func(err error) {
		if opts.Ready == nil {
			return
		}
		if err != nil {
			fmt.Fprintf(opts.Ready, "error: %v\n", err)
		} else {
			fmt.Fprintln(opts.Ready, "ok")
		}
		opts.Ready.Close()
		opts.Ready = nil
	}
	defer func() {
		if err != nil {
			l.Printf("scheduler: %v", err)
		}
		ready(err)
	}()

	s, err := loadSettings(opts.clientOptions(), opts.Topology)
	if err != nil {
		return err
	}
	if opts.WorkingDirectory != "" {
		s.WorkingDirectory = opts.WorkingDirectory
	}
	if opts.Egret == "" {
		if opts.Egret, err = os.Executable(); err != nil {
			return err
		}
	}
	wd := workdir(s.WorkingDirectory)
	if err := os.MkdirAll(string(wd), 0o755); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	lock := flock.New(wd.lockFile())
	locked, err := lock.TryLock()
	if err != nil {
		return fmt.Errorf("lock %s: %w", wd.lockFile(), err)
	}
	if !locked {
		p, _ := readPersisted(wd.stateFile())
		return fmt.Errorf("the scheduler of %s already runs (pid %d, lock %s)", opts.Topology, p.SchedulerPid, wd.lockFile())
	}
	defer lock.Unlock()

	st, err := openState(ctx, s)
	if err != nil {
		return err
	}
	defer st.Close()

	d := &daemon{opts: opts, settings: s, wd: wd, st: st, log: l, killed: make(chan struct{})}
	return d.run(ctx, ready)
}

func (d *daemon) run(ctx context.Context, ready func(error)) error {
	name := d.opts.Topology
	plan, err := d.st.PackingPlan(ctx, name)
	if err != nil {
		return fmt.Errorf("topology %s: read its packing plan: %w", name, err)
	}
	if plan == nil {
		return fmt.Errorf("topology %s has no packing plan: it is not submitted (or was killed)", name)
	}
	rec, err := readPersisted(d.wd.stateFile())
	if err != nil {
		return err
	}
	if d.li, err = readLaunchInfo(d.wd); err != nil {
		return err
	}
	d.setPlan(plan)

	// Executors are watched for the daemon's whole life; cancelling leaves them running.
	runCtx, cancel := context.WithCancel(context.Background())
	d.execs = newExecutors(runCtx, d.settings.Host, d.settings.Restart, d.settings.KillGrace, d.command, d.persist, d.log)
	defer func() {
		cancel()
		d.execs.wait()
	}()

	a := decideAdoption(containerIDs(plan), rec.Executors, alive)
	for _, c := range a.Stop {
		r := rec.Executors[c]
		d.execs.adopt(c, r)
		if err := d.execs.stop(ctx, c); err != nil {
			return err
		}
	}
	for _, c := range a.Adopt {
		d.execs.adopt(c, rec.Executors[c])
	}
	var startErr error
	for _, c := range a.Start {
		if err := d.execs.start(c, rec.Executors[c].Ports); err != nil {
			startErr = errors.Join(startErr, err)
		}
	}
	d.log.Printf("scheduler of %s: pid %d; adopted %v, started %v, stopped %v", name, os.Getpid(), a.Adopt, a.Start, a.Stop)
	if startErr != nil {
		stopCtx, c2 := context.WithTimeout(context.Background(), 2*d.settings.KillGrace)
		d.execs.stopAll(stopCtx)
		c2()
		return startErr
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(d.settings.Host, strconv.Itoa(d.settings.Port)))
	if err != nil {
		return fmt.Errorf("scheduler API: %w", err)
	}
	d.endpoint = ln.Addr().String()
	srv := &http.Server{Handler: apiHandler(d, func() { d.killOnce.Do(func() { close(d.killed) }) }), ErrorLog: d.log, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		c()
		<-served
	}()
	if err := d.st.SetSchedulerLocation(ctx, name, d.endpoint); err != nil {
		return fmt.Errorf("register the scheduler location: %w", err)
	}
	d.persist()
	d.log.Printf("scheduler of %s: serving on http://%s", name, d.endpoint)
	ready(nil)

	select {
	case <-ctx.Done():
		d.log.Printf("scheduler of %s: stopping; its executors keep running", name)
		d.st.DeleteSchedulerLocation(context.Background(), name)
		return nil
	case <-d.killed:
		d.log.Printf("scheduler of %s: topology killed", name)
		return nil
	case err := <-served:
		return fmt.Errorf("scheduler API: %w", err)
	}
}

// persist records the executors for the next daemon.
func (d *daemon) persist() {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	p := persisted{Topology: d.opts.Topology, SchedulerPid: os.Getpid(), HTTPEndpoint: d.endpoint, Executors: d.execs.records()}
	if err := writePersisted(d.wd.stateFile(), p); err != nil {
		d.log.Printf("record executors: %v", err)
	}
}

func (d *daemon) setPlan(p *model.PackingPlan) {
	d.planMu.Lock()
	d.plan = p
	d.planMu.Unlock()
}

// command is container c's `egret heron-executor` process, run in its
// sandbox; its output goes to heron-executor-<c>.stderr there, as Heron's
// local scheduler captures it.
func (d *daemon) command(c int, ports []int) (proc.Spec, error) {
	dir := d.wd.container(c)
	if _, err := os.Stat(dir); err != nil {
		return proc.Spec{}, fmt.Errorf("sandbox of container %d: %w", c, err)
	}
	d.planMu.Lock()
	plan := d.plan
	d.planMu.Unlock()
	args := d.settings.executorFlags(d.li, plan, c, ports).Args()
	// The executor would refuse them in a restart loop: refuse them here, once.
	if _, err := container.ParseFlags(args); err != nil {
		return proc.Spec{}, fmt.Errorf("executor flags of container %d: %w", c, err)
	}
	return proc.Spec{
		Argv: append([]string{d.opts.Egret, "heron-executor"}, args...),
		Dir:  dir,
		Logs: proc.LogPolicy{Stdout: d.wd.executorLog(c), Stderr: d.wd.executorLog(c)},
	}, nil
}

func containerIDs(plan *model.PackingPlan) []int {
	ids := []int{0}
	for _, cp := range plan.GetContainerPlans() {
		ids = append(ids, int(cp.GetId()))
	}
	return ids
}

// prepareContainer lays out the sandbox of a container added by an update,
// from the package and release the submit kept.
func (d *daemon) prepareContainer(ctx context.Context, c int) error {
	return prepareSandbox(ctx, d.settings, d.wd.container(c), d.wd.packageFile(), d.log.Printf)
}
