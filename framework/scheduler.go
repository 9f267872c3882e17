package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path"

	"strings"
	"sync"
	"time"

	"egret/config"
	"egret/heron/model"
	"egret/heron/statemgr"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/proto"
)

// Options configure `egret framework`, the scheduler of one topology.
type Options struct {
	Cluster, Role, Environment string
	Topology                   string
	ConfigPath                 string
	ConfigProperties           []string
	ConfigFile                 string
	ConfigLoader               string
	Log                        io.Writer
	// Ready, when set, receives "ok" once the framework is subscribed and
	// its API is up, or "error: <why>" when the master did not answer
	// within the staging timeout (Run then returns that error), and is closed.
	Ready io.WriteCloser
}

// stateStore keeps the Record in the state manager, beside Heron's nodes.
type stateStore struct {
	sm       statemgr.StateManager
	topology string
	extra    *Record // fields the engine does not own (the package), kept on save
	mu       sync.Mutex
}

func (s *stateStore) Load(ctx context.Context) (*Record, error) {
	b, err := s.sm.Get(ctx, statemgr.Frameworks, s.topology)
	if errors.Is(err, statemgr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := DecodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", statemgr.Frameworks, s.topology, err)
	}
	return &r, nil
}

func (s *stateStore) Save(ctx context.Context, r Record) error {
	s.mu.Lock()
	if s.extra != nil && r.Package == nil {
		r.Package = s.extra.Package
	}
	s.mu.Unlock()
	b, err := EncodeRecord(r)
	if err != nil {
		return err
	}
	return s.sm.Set(ctx, statemgr.Frameworks, s.topology, b)
}

// loadConfig loads the cluster's configuration for a topology.
func loadConfig(cluster, role, env, topology, configPath string, props []string, configFile, loader string) (*config.Config, error) {
	return config.Load(config.Options{ConfigPath: configPath, Cluster: cluster, Role: role, Environ: env, Topology: topology,
		Properties: props, ConfigFile: configFile, Loader: loader})
}

// heronScheduler is one running `egret framework`.
type heronScheduler struct {
	opts   Options
	cfg    *config.Config
	set    Settings
	sm     statemgr.StateManager
	engine *Engine
	log    *log.Logger
	stop   context.CancelFunc // ends Run (after a kill)

	mu     sync.Mutex
	inputs ContainerInputs
}

// Run is `egret framework`: it runs a submitted topology's containers on
// Mesos until ctx ends (the framework stays registered, so a new scheduler
// takes over) or the topology is killed.
func Run(ctx context.Context, opts Options) (err error) {
	ready := func(msg string) {
		if opts.Ready != nil {
			fmt.Fprintln(opts.Ready, msg)
			opts.Ready.Close()
			opts.Ready = nil
		}
	}
	defer func() {
		if err != nil {
			ready("error: " + err.Error())
		}
	}()
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	lg := log.New(opts.Log, "", log.LstdFlags)
	cfg, err := loadConfig(opts.Cluster, opts.Role, opts.Environment, opts.Topology, opts.ConfigPath, opts.ConfigProperties, opts.ConfigFile, opts.ConfigLoader)
	if err != nil {
		return err
	}
	set, err := ReadSettings(cfg)
	if err != nil {
		return err
	}
	sm, err := statemgr.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer sm.Close()
	lctx, lcancel := context.WithTimeout(ctx, set.LockWait)
	lock, err := sm.Lock(lctx, opts.Topology, "framework")
	lcancel()
	if err != nil {
		return fmt.Errorf("another egret framework runs topology %q: %w", opts.Topology, err)
	}
	defer lock.Unlock()

	store := &stateStore{sm: sm, topology: opts.Topology}
	rec, err := store.Load(ctx)
	if err != nil {
		return err
	}
	if rec == nil || rec.Package == nil {
		return fmt.Errorf("topology %q has no framework record (%s/%s): submit it with `egret submit mesos`", opts.Topology, statemgr.Frameworks, opts.Topology)
	}
	store.extra = rec
	topo, err := statemgr.Topology(ctx, sm, opts.Topology)
	if err != nil {
		return fmt.Errorf("topology %q: %w", opts.Topology, err)
	}
	plan, err := statemgr.PackingPlan(ctx, sm, opts.Topology)
	if err != nil {
		return fmt.Errorf("packing plan of %q: %w", opts.Topology, err)
	}
	es, err := statemgr.ExecutionState(ctx, sm, opts.Topology)
	if err != nil {
		return fmt.Errorf("execution state of %q: %w", opts.Topology, err)
	}
	s := &heronScheduler{opts: opts, cfg: cfg, set: set, sm: sm, log: lg}
	s.inputs = ContainerInputs{
		Topology: topo, Plan: plan, Cluster: es.GetCluster(), Role: es.GetRole(), Environment: es.GetEnviron(),
		StateConnection: cfg.String(config.KeyStateConnection), StateRoot: cfg.String(config.KeyStateRoot),
		JavaHome: set.JavaHome, Package: *rec.Package,
		MetricsCacheMode: cfg.String("heron.topology.metricscachemgr.mode"), HealthManagerMode: cfg.String("heron.topology.healthmgr.mode"),
	}
	executorInfo := ExecutorInfo(set.EgretURI, set.EgretChecksum)
	name := set.Name
	if name == "" {
		name = "egret " + opts.Topology
	}
	s.engine, err = NewEngine(EngineConfig{
		Masters: set.Masters, Name: name, User: set.User, Role: set.Role, Principal: set.Principal, Secret: set.Secret,
		FailoverTimeout: set.FailoverTimeout, Executor: executorInfo, Topology: opts.Topology, Store: store,
		Policy: set.Policy, ReconcileInterval: set.ReconcileInterval, Log: opts.Log,
		TaskData: func(c Container) ([]byte, error) {
			s.mu.Lock()
			in := s.inputs
			s.mu.Unlock()
			return TaskData(in, set.CoreURI, set.CoreChecksum, c)
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", set.APIAddress)
	if err != nil {
		return fmt.Errorf("%s %q: %w", KeyAPIAddress, set.APIAddress, err)
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.stop = cancel
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := s.engine.Run(ctx)
		if errors.Is(err, ErrKilled) || errors.Is(err, context.Canceled) {
			err = nil
		}
		errc <- err
		cancel()
	}()
	go func() {
		defer wg.Done()
		errc <- (&APIServer{Backend: s, Token: set.Token}).Serve(ctx, ln)
		cancel()
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	// The containers of the plan; the engine keeps the tasks it knows.
	if err := s.engine.SetContainers(ctx, Needs(plan)); err != nil {
		return err
	}
	// Registered within the staging timeout, or a clear error naming the master.
	sctx, scancel := context.WithTimeout(ctx, set.StagingTimeout)
	err = s.engine.Wait(sctx, func(sn Snapshot) bool { return sn.Subscribed })
	scancel()
	if err != nil {
		if ctx.Err() != nil {
			return firstErr(errc, ctx.Err())
		}
		last := s.engine.Status().LastError
		if last == "" {
			last = "no answer"
		}
		return fmt.Errorf("mesos master %s did not answer within %v (%s): %s", strings.Join(hosts(set.Masters), ","), set.StagingTimeout, KeyMaster, last)
	}
	endpoint := advertised(ln.Addr().String())
	loc := &model.SchedulerLocation{TopologyName: proto.String(opts.Topology), HttpEndpoint: proto.String(endpoint),
		JobPageLink: []string{jobLink(set.Masters[0], s.engine.Status().FrameworkID)}}
	if err := statemgr.SetSchedulerLocation(ctx, sm, loc); err != nil {
		return fmt.Errorf("register scheduler location: %w", err)
	}
	lg.Printf("framework %s subscribed; scheduler API on %s", s.engine.Status().FrameworkID, endpoint)
	ready("ok")
	<-ctx.Done()
	wg.Wait()
	return firstErr(errc, nil)
}

// ExecutorInfo runs `egret executor` from the egret tarball the agent's
// fetcher downloads and extracts. Mesos' fetcher verifies no checksum, so
// with one the command checks the downloaded archive before running it.
func ExecutorInfo(uri, checksum string) mesos.ExecutorInfo {
	extract, cache := true, true
	cmd := "exec ./egret executor"
	if hex, ok := strings.CutPrefix(checksum, "sha256:"); ok {
		archive := path.Base(strings.SplitN(uri, "?", 2)[0])
		cmd = fmt.Sprintf("echo '%s  %s' | sha256sum -c --quiet - && %s", hex, archive, cmd)
	}
	return mesos.ExecutorInfo{
		Command: &mesos.CommandInfo{
			URIs:  []mesos.CommandInfo_URI{{Value: uri, Extract: &extract, Cache: &cache}},
			Value: proto.String(cmd),
		},
	}
}

func firstErr(errc chan error, def error) error {
	for {
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		default:
			return def
		}
	}
}

func hosts(masters []string) []string {
	var hs []string
	for _, m := range masters {
		u := strings.TrimPrefix(strings.TrimPrefix(m, "http://"), "https://")
		hs = append(hs, strings.SplitN(u, "/", 2)[0])
	}
	return hs
}

func jobLink(master, frameworkID string) string {
	u := strings.TrimSuffix(master, "/api/v1/scheduler")
	return u + "/#/frameworks/" + frameworkID
}

// advertised is the API's host:port as other machines reach it.
func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// ---- Backend: Heron's scheduler API ----

func response(err error) []byte {
	st := &model.Status{Status: model.StatusCode_OK.Enum()}
	if err != nil {
		st.Status = model.StatusCode_NOTOK.Enum()
		st.Message = proto.String(err.Error())
	}
	b, _ := proto.Marshal(&model.SchedulerResponse{Status: st})
	return b
}

func (s *heronScheduler) Kill(ctx context.Context, body []byte) ([]byte, error) {
	var req model.KillTopologyRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return response(fmt.Errorf("kill: bad KillTopologyRequest: %w", err)), err
	}
	if req.GetTopologyName() != s.opts.Topology {
		err := fmt.Errorf("kill: this scheduler runs %q, not %q", s.opts.Topology, req.GetTopologyName())
		return response(err), err
	}
	if err := s.engine.Kill(ctx); err != nil {
		return response(err), err
	}
	err := errors.Join(s.sm.Delete(ctx, statemgr.Frameworks, s.opts.Topology), statemgr.CleanTopology(ctx, s.sm, s.opts.Topology))
	if err == nil {
		s.log.Printf("topology %s killed: no task left, framework torn down, state removed", s.opts.Topology)
	}
	s.stop()
	return response(err), err
}

func (s *heronScheduler) Restart(ctx context.Context, body []byte) ([]byte, error) {
	var req model.RestartTopologyRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return response(fmt.Errorf("restart: bad RestartTopologyRequest: %w", err)), err
	}
	if req.GetTopologyName() != s.opts.Topology {
		err := fmt.Errorf("restart: this scheduler runs %q, not %q", s.opts.Topology, req.GetTopologyName())
		return response(err), err
	}
	err := s.engine.Restart(ctx, int(req.GetContainerIndex()))
	return response(err), err
}

func (s *heronScheduler) Update(ctx context.Context, body []byte) ([]byte, error) {
	err := s.update(ctx, body)
	return response(err), err
}

// update scales as Heron's UpdateTopologyManager does: new containers first,
// then the packing plan (which the executors and the tmanager watch), then
// the removed containers.
func (s *heronScheduler) update(ctx context.Context, body []byte) error {
	var req model.UpdateTopologyRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("update: bad UpdateTopologyRequest: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	lock, err := s.sm.Lock(lctx, s.opts.Topology, "updateTopology")
	cancel()
	if err != nil {
		return fmt.Errorf("update: another update of %q is in progress: %w", s.opts.Topology, err)
	}
	defer lock.Unlock()
	cur, err := statemgr.PackingPlan(ctx, s.sm, s.opts.Topology)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if !proto.Equal(cur, req.GetCurrentPackingPlan()) {
		return errors.New("update: the packing plan changed since the update was computed; run it again")
	}
	proposed := req.GetProposedPackingPlan()
	if proposed == nil || len(proposed.GetContainerPlans()) == 0 {
		return errors.New("update: the proposed packing plan has no container")
	}
	oldNeeds, newNeeds := Needs(cur), Needs(proposed)
	union := map[int]Need{}
	for i, n := range oldNeeds {
		union[i] = n
	}
	for i, n := range newNeeds {
		union[i] = n
	}
	s.mu.Lock()
	s.inputs.Plan = proposed // new containers are launched with the new plan's RAM map
	s.mu.Unlock()
	if err := s.engine.SetContainers(ctx, union); err != nil {
		return err
	}
	b, err := proto.Marshal(proposed)
	if err != nil {
		return err
	}
	if err := s.sm.Replace(ctx, statemgr.PackingPlans, s.opts.Topology, b); err != nil {
		return fmt.Errorf("update: write packing plan: %w", err)
	}
	return s.engine.SetContainers(ctx, newNeeds)
}

// StatusView is the JSON of GET /status.
type StatusView struct {
	FormatVersion int             `json:"format_version"`
	Topology      string          `json:"topology"`
	PID           int             `json:"pid"` // of the scheduler
	FrameworkID   string          `json:"framework_id"`
	Master        string          `json:"master"`
	Subscribed    bool            `json:"subscribed"`
	Reconciled    bool            `json:"reconciled"`
	LastError     string          `json:"last_error,omitempty"`
	Containers    []ContainerView `json:"containers"`
}

// ContainerView is one container's line of the status.
type ContainerView struct {
	Container int      `json:"container"`
	Phase     string   `json:"phase"`
	Task      string   `json:"task,omitempty"`
	State     string   `json:"state,omitempty"`
	Message   string   `json:"message,omitempty"`
	Agent     string   `json:"agent,omitempty"`
	Host      string   `json:"host,omitempty"`
	Sandbox   string   `json:"sandbox,omitempty"`
	Ports     []uint32 `json:"ports,omitempty"`
	Attempt   int      `json:"attempt"`
	Failures  int      `json:"recent_failures"`
}

// View turns an engine snapshot into the status JSON.
func View(topology string, sn Snapshot) StatusView {
	v := StatusView{FormatVersion: 1, Topology: topology, FrameworkID: sn.FrameworkID, Master: sn.Master,
		Subscribed: sn.Subscribed, Reconciled: sn.Reconciled, LastError: sn.LastError, Containers: []ContainerView{}}
	for _, c := range sn.Containers {
		sb := c.Sandbox
		if sb == "" && c.TaskID != "" && c.AgentID != "" {
			// Where Mesos puts it under the agent's work directory.
			sb = "slaves/" + c.AgentID + "/frameworks/" + sn.FrameworkID + "/executors/" + ExecutorID(c.TaskID) + "/runs/latest"
		}
		v.Containers = append(v.Containers, ContainerView{Container: c.Index, Phase: string(c.Phase), Task: c.TaskID, State: c.State,
			Message: c.Message, Agent: c.AgentID, Host: c.Hostname, Sandbox: sb, Ports: c.Ports, Attempt: c.Attempt, Failures: len(c.Failures)})
	}
	return v
}

func (s *heronScheduler) Status(ctx context.Context) (any, error) {
	v := View(s.opts.Topology, s.engine.Status())
	v.PID = os.Getpid()
	return v, nil
}
