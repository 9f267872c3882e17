package localsched

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"egret/config"
	"egret/heron/container"
	"egret/heron/model"
)

// Keys egret adds for its local scheduler (Heron's own keys keep their meaning).
const (
	keyWorkingDirectory = "heron.scheduler.local.working.directory"
	keyCoreURI          = "heron.package.core.uri"
	keyJavaHome         = "heron.directory.sandbox.java.home"
	keyHost             = "egret.scheduler.local.host"
	keyPort             = "egret.scheduler.local.port"
	keyKillGrace        = "egret.scheduler.local.kill.grace"
	keyBackoffInitial   = "egret.scheduler.local.restart.backoff.initial"
	keyBackoffMax       = "egret.scheduler.local.restart.backoff.max"
	keyRestartBudget    = "egret.scheduler.local.restart.budget"
	keyRestartWindow    = "egret.scheduler.local.restart.window"
	keyReactivateWait   = "topology.update.reactivate.wait.secs"
	keyMetricsCacheMode = "heron.topology.metricscachemgr.mode"
	keyHealthMgrMode    = "heron.topology.healthmgr.mode"

	// simReleaseName is the simulated Heron release, looked for beside the egret binary.
	simReleaseName = "heron-core-sim.tar.gz"
)

// settings is everything the client and the daemon read from the configuration.
type settings struct {
	Cluster, Role, Environment, Topology string
	WorkingDirectory                     string
	Host                                 string
	Port                                 int
	KillGrace                            time.Duration
	ReactivateWait                       time.Duration
	Restart                              restartPolicy
	CoreURI                              string
	SimRelease                           bool // CoreURI is the simulated release
	JavaHome                             string
	StateConnection, StateRoot           string
	MetricsCacheMode, HealthMgrMode      string
	cfg                                  *config.Config
}

// loadSettings loads the cluster's configuration for one topology ("" for
// cluster-wide commands such as list).
func loadSettings(o ClientOptions, topology string) (settings, error) {
	s := settings{Cluster: o.Cluster, Role: o.Role, Environment: o.Environment, Topology: topology}
	if len(o.ConfigFiles) > 1 {
		return s, fmt.Errorf("--config-file given %d times; give one file", len(o.ConfigFiles))
	}
	opts := config.Options{ConfigPath: o.ConfigPath, Cluster: o.Cluster, Role: o.Role, Environ: o.Environment,
		Topology: topology, Properties: o.ConfigProperties, Loader: o.ConfigLoader}
	if len(o.ConfigFiles) == 1 {
		opts.ConfigFile = o.ConfigFiles[0]
	}
	if topology == "" {
		opts.Topology = "_"
	}
	cfg, err := config.Load(opts)
	if err != nil {
		return s, fmt.Errorf("configuration of cluster %s: %w", o.Cluster, err)
	}
	s.cfg = cfg
	var errs []error
	dur := func(key string, def time.Duration) time.Duration {
		d, err := cfg.Duration(key, def)
		errs = append(errs, err)
		return d
	}
	num := func(key string, def int64) int64 {
		n, err := cfg.Int(key, def)
		errs = append(errs, err)
		return n
	}
	s.WorkingDirectory = cfg.String(keyWorkingDirectory)
	if s.WorkingDirectory == "" {
		home, _ := os.UserHomeDir()
		s.WorkingDirectory = filepath.Join(home, ".herondata", "topologies", s.Cluster, s.Role, topology)
	}
	if abs, err := filepath.Abs(s.WorkingDirectory); err == nil {
		s.WorkingDirectory = abs
	}
	s.Host = cfg.String(keyHost)
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	s.Port = int(num(keyPort, 0))
	s.KillGrace = dur(keyKillGrace, 5*time.Second)
	s.ReactivateWait = time.Duration(num(keyReactivateWait, 600)) * time.Second
	s.Restart = restartPolicy{
		Initial: dur(keyBackoffInitial, defaultRestartPolicy.Initial),
		Max:     dur(keyBackoffMax, defaultRestartPolicy.Max),
		Budget:  int(num(keyRestartBudget, int64(defaultRestartPolicy.Budget))),
		Window:  dur(keyRestartWindow, defaultRestartPolicy.Window),
	}
	s.StateConnection = cfg.String(config.KeyStateConnection)
	s.StateRoot = cfg.String(config.KeyStateRoot)
	s.MetricsCacheMode = cfg.String(keyMetricsCacheMode)
	if s.MetricsCacheMode == "" {
		s.MetricsCacheMode = "disabled"
	}
	s.HealthMgrMode = cfg.String(keyHealthMgrMode)
	if s.HealthMgrMode == "" {
		s.HealthMgrMode = "disabled"
	}
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	if s.StateConnection == "" || s.StateRoot == "" {
		return s, fmt.Errorf("cluster %s: %s and %s must be set", s.Cluster, config.KeyStateConnection, config.KeyStateRoot)
	}
	// The core release: an explicit heron.package.core.uri, else the simulated release
	// ($EGRET_SIM_RELEASE, or heron-core-sim.tar.gz beside this binary).
	if userSet(cfg, keyCoreURI) {
		s.CoreURI = cfg.String(keyCoreURI)
	} else if env := os.Getenv("EGRET_SIM_RELEASE"); env != "" {
		s.CoreURI, s.SimRelease = env, true
	} else if exe, err := os.Executable(); err == nil {
		s.CoreURI, s.SimRelease = filepath.Join(filepath.Dir(exe), simReleaseName), true
	}
	s.JavaHome = cfg.String(keyJavaHome)
	if s.SimRelease && !userSet(cfg, keyJavaHome) {
		s.JavaHome = "./heron-core/java" // the simulated release's Java stand-in
	}
	if s.JavaHome == "" {
		s.JavaHome = os.Getenv("JAVA_HOME")
	}
	return s, nil
}

// userSet reports whether a key was given by the user (a property, a file of
// theirs) rather than left to egret's embedded configuration or Heron's defaults.
func userSet(cfg *config.Config, key string) bool {
	if _, ok := cfg.Lookup(key); !ok {
		return false
	}
	f := cfg.Source(key).File
	return f != "" && f != "default" && f != "option" && !strings.HasPrefix(f, "embedded:")
}

// launchInfo is what submit learns from the topology package and the daemon
// needs to build executor command lines (launch.json in the working directory).
type launchInfo struct {
	FormatVersion int    `json:"format_version"`
	TopologyID    string `json:"topology_id"`
	PkgType       string `json:"pkg_type"`
	Binary        string `json:"topology_binary"`
	Classpath     string `json:"classpath"`
	DefnFile      string `json:"defn_file"`
}

func (w workdir) launchFile() string  { return filepath.Join(string(w), "launch.json") }
func (w workdir) packageFile() string { return filepath.Join(string(w), "topology.tar.gz") }

func readLaunchInfo(wd workdir) (launchInfo, error) {
	var li launchInfo
	b, err := os.ReadFile(wd.launchFile())
	if errors.Is(err, fs.ErrNotExist) {
		return li, fmt.Errorf("%s is missing: the topology was not submitted by egret, or its working directory was removed", wd.launchFile())
	}
	if err != nil {
		return li, err
	}
	if err := json.Unmarshal(b, &li); err != nil {
		return li, fmt.Errorf("%s: %w", wd.launchFile(), err)
	}
	if li.FormatVersion != 1 {
		return li, fmt.Errorf("%s: format_version %d, this egret reads 1", wd.launchFile(), li.FormatVersion)
	}
	return li, nil
}

// executorFlags are container c's heron-executor flags, as Heron's
// SchedulerUtils builds them in cluster mode (paths relative to the sandbox).
func (s settings) executorFlags(li launchInfo, plan *model.PackingPlan, c int, ports []int) *container.Flags {
	ram := map[string]int64{}
	for _, cp := range plan.GetContainerPlans() {
		for _, ip := range cp.GetInstancePlans() {
			r := ip.GetResource().GetRam()
			if old, ok := ram[ip.GetComponentName()]; !ok || r < old {
				ram[ip.GetComponentName()] = r
			}
		}
	}
	f := &container.Flags{
		Shard:                   c,
		TopologyName:            s.Topology,
		TopologyID:              li.TopologyID,
		TopologyDefnFile:        li.DefnFile,
		StateManagerConnection:  s.StateConnection,
		StateManagerRoot:        s.StateRoot,
		Classpath:               li.Classpath,
		ComponentRAMMap:         ram,
		ComponentJVMOpts:        map[string]string{},
		PkgType:                 li.PkgType,
		TopologyBinaryFile:      li.Binary,
		HeronJavaHome:           s.JavaHome,
		Cluster:                 s.Cluster,
		Role:                    s.Role,
		Environment:             s.Environment,
		MetricsCacheManagerMode: s.MetricsCacheMode,
		CheckpointManagerRAM:    1 << 30,
		HealthManagerMode:       s.HealthMgrMode,
		RestartBudget:           container.DefaultRestartBudget,
		BackoffMin:              container.DefaultBackoffMin,
		BackoffMax:              container.DefaultBackoffMax,
		StopGrace:               s.executorStopGrace(),
		HealthInterval:          container.DefaultHealthInterval,
		HealthGrace:             container.DefaultHealthGrace,
	}
	f.UseReleaseLayout()
	var byMeaning [container.PortCount]int
	copy(byMeaning[:], ports)
	f.SetPorts(byMeaning)
	return f
}

// executorStopGrace leaves the executor time to stop its daemons within the
// scheduler's own grace.
func (s settings) executorStopGrace() time.Duration {
	if s.KillGrace > 2*time.Second {
		return s.KillGrace - time.Second
	}
	return s.KillGrace / 2
}
