package framework

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"egret/config"
	"egret/heron/model"
	"egret/heron/statemgr"

	"google.golang.org/protobuf/proto"
)

// ClientOptions are the `egret` command line's choices for one command on
// a mesos cluster.
type ClientOptions struct {
	Cluster, Role, Environment string
	ConfigPath                 string
	ConfigProperties           []string // KEY=VALUE
	ConfigFiles                []string
	ConfigLoader               string
	Verbose                    bool
	DryRun                     bool
	DryRunFormat               string
	Out, Err                   io.Writer
	// Egret is the binary that runs `egret framework`; default: this one.
	Egret string
}

// Client carries out the topology commands on a mesos cluster: it talks to
// the topology's scheduler (`egret framework`) through Heron's scheduler API,
// starting the scheduler again when it finds it gone.
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
	if len(opts.ConfigFiles) > 1 {
		return nil, fmt.Errorf("--config-file: one file at most on a mesos cluster, got %d", len(opts.ConfigFiles))
	}
	return &Client{opts: opts}, nil
}

func (c *Client) configFile() string {
	if len(c.opts.ConfigFiles) == 1 {
		return c.opts.ConfigFiles[0]
	}
	return ""
}

// session is one command's configuration and state manager.
type session struct {
	cfg *config.Config
	set Settings
	sm  statemgr.StateManager
}

func (c *Client) open(ctx context.Context, topology string) (*session, error) {
	cfg, err := loadConfig(c.opts.Cluster, c.opts.Role, c.opts.Environment, topology, c.opts.ConfigPath, c.opts.ConfigProperties, c.configFile(), c.opts.ConfigLoader)
	if err != nil {
		return nil, err
	}
	set, err := ReadSettings(cfg)
	if err != nil {
		return nil, err
	}
	sm, err := statemgr.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &session{cfg: cfg, set: set, sm: sm}, nil
}

// openTopology opens a session for a command on an existing topology of
// this client's cluster, role and environment.
func (c *Client) openTopology(ctx context.Context, topology string) (*session, error) {
	s, err := c.open(ctx, topology)
	if err != nil {
		return nil, err
	}
	if err := c.checkTopology(ctx, s, topology); err != nil {
		s.sm.Close()
		return nil, err
	}
	return s, nil
}

// checkTopology refuses a topology that does not exist or belongs to
// another cluster, role or environment.
func (c *Client) checkTopology(ctx context.Context, s *session, topology string) error {
	es, err := statemgr.ExecutionState(ctx, s.sm, topology)
	if errors.Is(err, statemgr.ErrNotFound) {
		return fmt.Errorf("topology %q does not exist on cluster %s", topology, c.opts.Cluster)
	}
	if err != nil {
		return err
	}
	if es.GetCluster() != c.opts.Cluster || es.GetRole() != c.opts.Role || es.GetEnviron() != c.opts.Environment {
		return fmt.Errorf("topology %q runs as %s/%s/%s, not %s/%s/%s", topology, es.GetCluster(), es.GetRole(), es.GetEnviron(),
			c.opts.Cluster, c.opts.Role, c.opts.Environment)
	}
	return nil
}

// schedulerURL finds the topology's scheduler API, starting `egret
// framework` again if it is gone.
func (c *Client) schedulerURL(ctx context.Context, s *session, topology string) (string, error) {
	if loc, err := statemgr.SchedulerLocation(ctx, s.sm, topology); err == nil && loc.GetHttpEndpoint() != "" {
		u := "http://" + loc.GetHttpEndpoint()
		if reachable(ctx, u) {
			return u, nil
		}
	}
	if err := c.startFramework(ctx, s, topology); err != nil {
		return "", err
	}
	loc, err := statemgr.SchedulerLocation(ctx, s.sm, topology)
	if err != nil {
		return "", fmt.Errorf("the scheduler of %q started but registered no location: %w", topology, err)
	}
	return "http://" + loc.GetHttpEndpoint(), nil
}

func reachable(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return true
}

// frameworkArgs is the command line of `egret framework` for a topology.
func (c *Client) frameworkArgs(topology string) []string {
	args := []string{"framework", "--cluster", c.opts.Cluster + "/" + c.opts.Role + "/" + c.opts.Environment, "--topology", topology, "--ready-fd", "3"}
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
	return args
}

// startFramework starts `egret framework` detached (its own session, its
// log in the working directory) and waits until it reports that it is
// subscribed, or why not. A scheduler that fails is not left behind.
func (c *Client) startFramework(ctx context.Context, s *session, topology string) error {
	dir := s.set.WorkingDirectory
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "egret-framework-"+topology)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", KeyWorkingDirectory, err)
	}
	logPath := filepath.Join(dir, "framework.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd := exec.Command(c.opts.Egret, c.frameworkArgs(topology)...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("start egret framework: %w", err)
	}
	pw.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	deadline := s.set.LockWait + s.set.StagingTimeout + 15*time.Second // config, ZooKeeper, lock, then the master
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	fail := func(why string) error {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s (log: %s)", why, logPath)
	}
	select {
	case line := <-lines:
		if line == "ok" {
			go func() { <-exited }() // it runs on; reaped if this process lives that long
			return nil
		}
		if line == "" {
			err := <-exited
			return fmt.Errorf("egret framework for %q exited before it was ready: %v (log: %s)", topology, err, logPath)
		}
		return fail(strings.TrimPrefix(line, "error: "))
	case <-timer.C:
		return fail(fmt.Sprintf("egret framework for %q not ready within %v", topology, deadline))
	case <-ctx.Done():
		return fail(ctx.Err().Error())
	}
}

// post sends a Heron scheduler request and reads its SchedulerResponse.
func (c *Client) post(ctx context.Context, s *session, base, path string, msg proto.Message) error {
	body, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as Heron's client sends it
	if s.set.Token != "" {
		req.Header.Set(TokenHeader, s.set.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scheduler %s: %w", base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("scheduler %s%s: %w", base, path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("scheduler %s%s: %s: %s", base, path, res.Status, strings.TrimSpace(string(b)))
	}
	var resp model.SchedulerResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return fmt.Errorf("scheduler %s%s: bad SchedulerResponse: %w", base, path, err)
	}
	if resp.GetStatus().GetStatus() != model.StatusCode_OK {
		msg := resp.GetStatus().GetMessage()
		if msg == "" {
			msg = "NOTOK"
		}
		return fmt.Errorf("scheduler refused %s: %s", strings.TrimPrefix(path, "/"), msg)
	}
	return nil
}

// Kill kills every task, tears the framework down and removes the
// topology's state. A topology whose scheduler cannot be started is still
// cleaned from the state, as Heron's kill does.
func (c *Client) Kill(ctx context.Context, topology string) error {
	s, err := c.openTopology(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	base, err := c.schedulerURL(ctx, s, topology)
	if err != nil {
		return err
	}
	return c.post(ctx, s, base, "/kill", &model.KillTopologyRequest{TopologyName: proto.String(topology)})
}

// Restart kills and relaunches one container's task (all with -1). The
// topology manager's location goes first when its container restarts, as
// Heron's CLI does.
func (c *Client) Restart(ctx context.Context, topology string, container int) error {
	s, err := c.openTopology(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	base, err := c.schedulerURL(ctx, s, topology)
	if err != nil {
		return err
	}
	if container <= 0 {
		if err := s.sm.Delete(ctx, statemgr.TManagers, topology); err != nil {
			return err
		}
	}
	return c.post(ctx, s, base, "/restart", &model.RestartTopologyRequest{TopologyName: proto.String(topology), ContainerIndex: proto.Int32(int32(container))})
}

// Status prints every container's task, state, agent and sandbox.
func (c *Client) Status(ctx context.Context, topology string, asJSON bool) error {
	s, err := c.openTopology(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	base, err := c.schedulerURL(ctx, s, topology)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	if s.set.Token != "" {
		req.Header.Set(TokenHeader, s.set.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scheduler %s: %w", base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("scheduler %s/status: %s: %s", base, res.Status, strings.TrimSpace(string(b)))
	}
	if asJSON {
		_, err := c.opts.Out.Write(b)
		return err
	}
	var v StatusView
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("scheduler %s/status: %w", base, err)
	}
	return PrintStatus(c.opts.Out, v)
}

// PrintStatus writes the status as a table.
func PrintStatus(w io.Writer, v StatusView) error {
	state := "subscribed"
	if !v.Subscribed {
		state = "not subscribed"
		if v.LastError != "" {
			state += ": " + v.LastError
		}
	}
	fmt.Fprintf(w, "topology %s: framework %s on %s (%s)\n", v.Topology, v.FrameworkID, strings.TrimSuffix(v.Master, "/api/v1/scheduler"), state)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tTASK\tSTATE\tAGENT\tHOST\tSANDBOX")
	for _, c := range v.Containers {
		st := c.State
		if st == "" || c.Phase != "active" {
			st = c.Phase
			if c.State != "" {
				st += " (" + c.State + ")"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.Container, dash(c.Task), st, dash(c.Agent), dash(c.Host), dash(c.Sandbox))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// List names the topologies of this cluster.
func (c *Client) List(ctx context.Context) ([]string, error) {
	s, err := c.open(ctx, "")
	if err != nil {
		return nil, err
	}
	defer s.sm.Close()
	names, err := s.sm.List(ctx, statemgr.Frameworks)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if es, err := statemgr.ExecutionState(ctx, s.sm, n); err == nil && es.GetCluster() == c.opts.Cluster {
			out = append(out, n)
		}
	}
	return out, nil
}

// Activate and Deactivate go to the topology manager, as Heron's do.
func (c *Client) Activate(ctx context.Context, topology string) error {
	return c.tmanager(ctx, topology, "activate", nil)
}

func (c *Client) Deactivate(ctx context.Context, topology string) error {
	return c.tmanager(ctx, topology, "deactivate", nil)
}

func (c *Client) tmanager(ctx context.Context, topology, op string, extra url.Values) error {
	s, err := c.openTopology(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	loc, err := statemgr.TManagerLocation(ctx, s.sm, topology)
	if err != nil {
		return fmt.Errorf("%s %q: no topology manager location (is container 0 running?): %w", op, topology, err)
	}
	q := url.Values{"topologyid": {loc.GetTopologyId()}}
	for k, v := range extra {
		q[k] = v
	}
	u := fmt.Sprintf("http://%s:%d/%s?%s", loc.GetHost(), loc.GetControllerPort(), op, q.Encode())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %q: topology manager: %w", op, topology, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s %q: topology manager answered %s: %s", op, topology, res.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
