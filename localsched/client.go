package localsched

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"egret/heron/model"

	"github.com/gofrs/flock"
	"google.golang.org/protobuf/proto"
)

// ClientOptions are the `egret` command line's choices for one command.
type ClientOptions struct {
	Cluster, Role, Environment string
	ConfigPath                 string
	ConfigProperties           []string // KEY=VALUE
	ConfigFiles                []string
	ConfigLoader               string
	Verbose                    bool
	DryRun                     bool
	DryRunFormat               string // table or json
	Out, Err                   io.Writer
	// Egret is the binary that runs the daemon (`egret scheduler`); default: this one.
	Egret string
}

// Options configure the daemon, `egret scheduler`.
type Options struct {
	Cluster, Role, Environment string
	Topology                   string
	ConfigPath                 string
	ConfigProperties           []string
	ConfigFiles                []string
	ConfigLoader               string
	// WorkingDirectory overrides heron.scheduler.local.working.directory.
	WorkingDirectory string
	// Ready, when set, receives one line once every container has started
	// ("ok") or could not ("error: <reason>"), and is then closed.
	Ready io.WriteCloser
	// Egret is the binary that runs the executors (`egret heron-executor`).
	Egret string
	Log   io.Writer
}

func (o Options) clientOptions() ClientOptions {
	return ClientOptions{Cluster: o.Cluster, Role: o.Role, Environment: o.Environment, ConfigPath: o.ConfigPath,
		ConfigProperties: o.ConfigProperties, ConfigFiles: o.ConfigFiles, ConfigLoader: o.ConfigLoader, Egret: o.Egret}
}

// Client carries out the topology commands on a local cluster.
type Client struct {
	opts ClientOptions
}

// NewClient checks the options; nothing is contacted until a command runs.
func NewClient(ctx context.Context, opts ClientOptions) (*Client, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Err == nil {
		opts.Err = os.Stderr
	}
	if opts.Egret == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		opts.Egret = exe
	}
	return &Client{opts: opts}, nil
}

func (c *Client) progress(format string, a ...any) {
	fmt.Fprintf(c.opts.Err, "egret: "+format+"\n", a...)
}

func (c *Client) verbose(format string, a ...any) {
	if c.opts.Verbose {
		c.progress(format, a...)
	}
}

// open loads the configuration and opens the state tree for a topology.
func (c *Client) open(ctx context.Context, topology string) (settings, stateTree, error) {
	s, err := loadSettings(c.opts, topology)
	if err != nil {
		return s, stateTree{}, err
	}
	st, err := openState(ctx, s)
	return s, st, err
}

// existing opens a topology that must exist, with matching cluster, role and environment.
func (c *Client) existing(ctx context.Context, topology string) (settings, stateTree, error) {
	s, st, err := c.open(ctx, topology)
	if err != nil {
		return s, stateTree{}, err
	}
	if err := checkExists(ctx, st, s, topology); err != nil {
		st.Close()
		return s, stateTree{}, err
	}
	return s, st, nil
}

func checkExists(ctx context.Context, st stateTree, s settings, topology string) error {
	t, err := st.Topology(ctx, topology)
	if err != nil {
		return fmt.Errorf("read topology %s: %w", topology, err)
	}
	if t == nil {
		return fmt.Errorf("topology %s is not running on cluster %s", topology, s.Cluster)
	}
	es, err := st.ExecutionState(ctx, topology)
	if err != nil {
		return fmt.Errorf("read the execution state of %s: %w", topology, err)
	}
	if es != nil && (es.GetCluster() != s.Cluster || es.GetRole() != s.Role || es.GetEnviron() != s.Environment) {
		return fmt.Errorf("topology %s runs as %s/%s/%s, not %s/%s/%s", topology, es.GetCluster(), es.GetRole(), es.GetEnviron(), s.Cluster, s.Role, s.Environment)
	}
	return nil
}

// Activate resumes a paused topology through its topology manager.
func (c *Client) Activate(ctx context.Context, topology string) error {
	return c.transition(ctx, topology, true)
}

// Deactivate pauses a running topology through its topology manager.
func (c *Client) Deactivate(ctx context.Context, topology string) error {
	return c.transition(ctx, topology, false)
}

func (c *Client) transition(ctx context.Context, topology string, activate bool) error {
	_, st, err := c.existing(ctx, topology)
	if err != nil {
		return err
	}
	defer st.Close()
	word := map[bool]string{true: "activated", false: "deactivated"}[activate]
	changed, err := transition(ctx, st, topology, activate)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(c.opts.Out, "Topology %s is already %s\n", topology, word)
		return nil
	}
	fmt.Fprintf(c.opts.Out, "Topology %s %s\n", topology, word)
	return nil
}

// Restart restarts one container (or all, -1) through the scheduler.
func (c *Client) Restart(ctx context.Context, topology string, container int) error {
	s, st, err := c.existing(ctx, topology)
	if err != nil {
		return err
	}
	defer st.Close()
	if container <= 0 {
		// As Heron does: the new topology manager must not find the old location.
		if err := st.DeleteTManagerLocation(ctx, topology); err != nil {
			return fmt.Errorf("restart %s: %w", topology, err)
		}
	}
	c.progress("restarting %s", map[bool]string{true: "every container", false: fmt.Sprintf("container %d", container)}[container < 0])
	req := &model.RestartTopologyRequest{TopologyName: proto.String(topology), ContainerIndex: proto.Int32(int32(container))}
	if err := c.withDaemon(ctx, s, st, topology, func(ep string) error { return postScheduler(ctx, ep, "restart", req) }); err != nil {
		return fmt.Errorf("restart %s: %w", topology, err)
	}
	fmt.Fprintf(c.opts.Out, "Topology %s restarted\n", topology)
	return nil
}

// Update changes parallelism or the container count through the scheduler,
// or sends runtime configuration to the topology manager.
func (c *Client) Update(ctx context.Context, topology string, parallelism map[string]int, containers int, runtimeConfig []string) error {
	s, st, err := c.existing(ctx, topology)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(runtimeConfig) > 0 {
		if c.opts.DryRun {
			fmt.Fprintf(c.opts.Out, "Would send to the topology manager of %s: %s\n", topology, strings.Join(runtimeConfig, " "))
			return nil
		}
		if err := tmanagerControl(ctx, st, topology, "runtime_config/update", runtimeConfig); err != nil {
			return fmt.Errorf("update %s: %w", topology, err)
		}
		fmt.Fprintf(c.opts.Out, "Topology %s: runtime configuration updated\n", topology)
		return nil
	}
	current, err := st.PackingPlan(ctx, topology)
	if err != nil || current == nil {
		return fmt.Errorf("update %s: no packing plan (%v)", topology, err)
	}
	topo, err := st.Topology(ctx, topology)
	if err != nil {
		return fmt.Errorf("update %s: %w", topology, err)
	}
	proposed, err := repack(s, topo, current, parallelism, containers)
	if err != nil {
		return fmt.Errorf("update %s: %w", topology, err)
	}
	if c.opts.DryRun {
		return printPlan(c.opts.Out, c.opts.DryRunFormat, topology, proposed, nil)
	}
	c.progress("updating %s", topology)
	req := &model.UpdateTopologyRequest{CurrentPackingPlan: current, ProposedPackingPlan: proposed}
	if err := c.withDaemon(ctx, s, st, topology, func(ep string) error { return postScheduler(ctx, ep, "update", req) }); err != nil {
		return fmt.Errorf("update %s: %w", topology, err)
	}
	fmt.Fprintf(c.opts.Out, "Topology %s updated\n", topology)
	return nil
}

// List prints nothing itself: it returns the topologies of the cluster.
func (c *Client) List(ctx context.Context) ([]string, error) {
	s, st, err := c.open(ctx, "")
	if err != nil {
		return nil, err
	}
	_ = s
	defer st.Close()
	return st.List(ctx)
}

// schedulerEndpoint returns the registered endpoint of the daemon, or "".
func schedulerEndpoint(ctx context.Context, st stateTree, topology string) string {
	loc, err := st.SchedulerLocation(ctx, topology)
	if err != nil || loc == nil {
		return ""
	}
	return loc.GetHttpEndpoint()
}

// daemonRunning reports whether a daemon holds the working directory's lock.
func daemonRunning(wd workdir) bool {
	if _, err := os.Stat(wd.lockFile()); err != nil {
		return false
	}
	l := flock.New(wd.lockFile())
	ok, err := l.TryLock()
	if err != nil {
		return false
	}
	if ok {
		l.Unlock()
		return false
	}
	return true
}

// ensureDaemon returns the daemon's endpoint, restarting the daemon first
// when it is gone (it then adopts the executors that still run).
func (c *Client) ensureDaemon(ctx context.Context, s settings, st stateTree, topology string) (string, error) {
	wd := workdir(s.WorkingDirectory)
	if daemonRunning(wd) {
		if ep := schedulerEndpoint(ctx, st, topology); ep != "" {
			return ep, nil
		}
		return "", fmt.Errorf("the scheduler of %s runs but has not registered its location; see %s", topology, wd.logFile())
	}
	c.progress("the scheduler of %s is not running; starting it again", topology)
	if err := c.startDaemon(ctx, s, topology); err != nil {
		return "", err
	}
	if ep := schedulerEndpoint(ctx, st, topology); ep != "" {
		return ep, nil
	}
	return "", fmt.Errorf("the scheduler of %s started but did not register its location; see %s", topology, wd.logFile())
}

// withDaemon runs fn against the daemon's endpoint. When the daemon dies
// between finding it and calling it (the connection fails), it waits for the
// dead daemon's lock to be released, starts another and calls again.
func (c *Client) withDaemon(ctx context.Context, s settings, st stateTree, topology string, fn func(endpoint string) error) error {
	ep, err := c.ensureDaemon(ctx, s, st, topology)
	if err != nil {
		return err
	}
	err = fn(ep)
	var ne *net.OpError
	if err == nil || !errors.As(err, &ne) {
		return err
	}
	l := flock.New(workdir(s.WorkingDirectory).lockFile())
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ok, lerr := l.TryLockContext(lctx, 20*time.Millisecond); lerr != nil || !ok {
		return err
	}
	l.Unlock()
	if ep, err = c.ensureDaemon(ctx, s, st, topology); err != nil {
		return err
	}
	return fn(ep)
}

// startDaemon starts `egret scheduler` detached (its own session, output to
// scheduler.log) and returns once it reports its containers started, or with
// the reason it gave (or the end of its log) when it could not.
func (c *Client) startDaemon(ctx context.Context, s settings, topology string) error {
	wd := workdir(s.WorkingDirectory)
	logf, err := os.OpenFile(wd.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("scheduler log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{"scheduler", "--cluster", s.Cluster + "/" + s.Role + "/" + s.Environment, "--topology", topology,
		"--working-directory", s.WorkingDirectory, "--ready-fd", "3"}
	if c.opts.ConfigPath != "" {
		args = append(args, "--config-path", c.opts.ConfigPath)
	}
	for _, p := range c.opts.ConfigProperties {
		args = append(args, "--config-property", p)
	}
	for _, f := range c.opts.ConfigFiles {
		args = append(args, "--config-file", f)
	}
	if c.opts.ConfigLoader != "" {
		args = append(args, "--config-loader", c.opts.ConfigLoader)
	}
	cmd := exec.Command(c.opts.Egret, args...)
	cmd.Dir = string(wd)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start the scheduler: %w", err)
	}
	w.Close()
	c.verbose("scheduler of %s started, pid %d; log %s", topology, cmd.Process.Pid, wd.logFile())

	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	var got string
	select {
	case got = <-line:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return ctx.Err()
	}
	if got == "ok" {
		// Detached: it is re-parented when this command exits.
		cmd.Process.Release()
		return nil
	}
	cmd.Wait()
	if reason, ok := strings.CutPrefix(got, "error: "); ok {
		return fmt.Errorf("the scheduler of %s failed: %s (log: %s)", topology, reason, wd.logFile())
	}
	return fmt.Errorf("the scheduler of %s exited before starting its containers; the end of %s:\n%s", topology, wd.logFile(), tail(wd.logFile(), 15))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// postScheduler sends one request of Heron's scheduler API and checks its
// SchedulerResponse.
func postScheduler(ctx context.Context, endpoint, command string, req proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+endpoint+"/"+command, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as Heron's client sends it
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("scheduler at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("scheduler at %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scheduler at %s answered %s", endpoint, resp.Status)
	}
	sr := &model.SchedulerResponse{}
	if err := proto.Unmarshal(b, sr); err != nil {
		return fmt.Errorf("scheduler at %s: bad SchedulerResponse: %w", endpoint, err)
	}
	return responseError(sr)
}

var errNoScheduler = errors.New("no scheduler")
