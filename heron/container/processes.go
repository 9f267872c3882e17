package container

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Plan is the part of Heron's PackingPlan the container runtime needs: which
// containers exist and which instances each one runs. Container 0 is implicit
// and never listed.
type Plan struct {
	ID         string
	Containers []ContainerPlan
}

// ContainerPlan is one container (1..N) of a plan.
type ContainerPlan struct {
	ID        int
	Instances []InstancePlan
}

// InstancePlan is one instance of a component.
type InstancePlan struct {
	Component string
	TaskID    int
	Index     int
}

// Container returns the plan of container id, if the plan has it.
func (p *Plan) Container(id int) (ContainerPlan, bool) {
	if p == nil {
		return ContainerPlan{}, false
	}
	for _, c := range p.Containers {
		if c.ID == id {
			return c, true
		}
	}
	return ContainerPlan{}, false
}

// Runtime is what the command lines depend on besides the flags and the plan:
// facts about the machine and the sandbox that the executor finds out once.
type Runtime struct {
	Host        string   // --myhost for tmanager and stmgr
	LogDir      string   // heron.logging.directory, relative to the cwd
	JavaVersion string   // as printed by the JVM-version probe, e.g. "11.0.2" or "1.8.0_292"
	Dir         string   // the sandbox (cwd of every process); absolute
	Env         []string // the environment every child inherits (PEX_ROOT is added)
	HeapCheck   bool     // $ENABLE_HEAPCHECK was set
}

// Process is one daemon of a shard: its logical name, command line,
// environment, working directory and the ports by which its health is checked.
type Process struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// HealthURL is an HTTP endpoint answering 200 when healthy (heron-shell).
	HealthURL string `json:"health_url,omitempty"`
	// TCPPort is a port the daemon listens on once it is up.
	TCPPort int `json:"tcp_port,omitempty"`
}

// Process names of container 0 that do not carry the shard number.
const (
	NameTManager     = "heron-tmanager"
	NameMetricsCache = "heron-metricscache"
	NameHealthMgr    = "heron-healthmgr"
	NameShell        = "heron-shell" // a shard not yet in the plan
)

// InstanceID is Heron's instance name: container_<shard>_<component>_<task>.
func InstanceID(shard int, component string, task int) string {
	return fmt.Sprintf("container_%d_%s_%d", shard, component, task)
}

// javaMajor is Heron's reading of the probe's output: the part before the first dot.
func javaMajor(v string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(strings.TrimSpace(v), ".", 2)[0]))
	return n
}

// Processes computes the daemons of shard f.Shard for plan, exactly as Heron's
// executor does (reference section 1.5 and 1.6). A nil plan or a plan with no
// containers yields no processes; a worker shard absent from the plan yields
// only heron-shell.
func Processes(f *Flags, plan *Plan, rt Runtime) ([]Process, error) {
	if plan == nil || len(plan.Containers) == 0 {
		return nil, nil
	}
	b := builder{f: f, rt: rt}
	b.debugPorts = append([]int(nil), f.JVMRemoteDebuggerPorts...)
	if f.Shard == 0 {
		return b.managerProcesses()
	}
	cp, ok := plan.Container(f.Shard)
	if !ok {
		return []Process{b.shell(NameShell)}, nil
	}
	return b.workerProcesses(cp)
}

type builder struct {
	f          *Flags
	rt         Runtime
	debugPorts []int
}

func (b *builder) proc(name string, argv []string) Process {
	env := append([]string(nil), b.rt.Env...)
	env = setEnv(env, "PEX_ROOT", filepath.Join(b.rt.Dir, ".pex"))
	return Process{Name: name, Argv: argv, Env: env, Dir: b.rt.Dir}
}

func setEnv(env []string, k, v string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}

func (b *builder) heapCheck(p Process) Process {
	if b.rt.HeapCheck {
		p.Env = setEnv(p.Env, "LD_PRELOAD", "/usr/lib/libtcmalloc.so")
		p.Env = setEnv(p.Env, "HEAPCHECK", "normal")
	}
	return p
}

func (b *builder) java() string { return filepath.Join(b.f.HeronJavaHome, "bin", "java") }

func itoa(n int) string { return strconv.Itoa(n) }

// gc returns the GC options Heron inserts just before -cp.
func (b *builder) gc(name string) []string {
	o := []string{"-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:+UseStringDeduplication",
		"-XX:MaxGCPauseMillis=100", "-XX:InitiatingHeapOccupancyPercent=30", "-XX:ParallelGCThreads=4"}
	if b.f.VerboseGC {
		o = append(o, "-Xlog:gc*,safepoint=info:file="+b.rt.LogDir+"/gc."+name+".log:tags,time,uptime,level:filecount=5,filesize=100M")
	}
	return o
}

func (b *builder) managerProcesses() ([]Process, error) {
	f := b.f
	var ps []Process
	ps = append(ps, b.heapCheck(b.proc(NameTManager, []string{
		f.TManagerBinary,
		"--topology_name=" + f.TopologyName,
		"--topology_id=" + f.TopologyID,
		"--zkhostportlist=" + f.StateManagerConnection,
		"--zkroot=" + f.StateManagerRoot,
		"--myhost=" + b.rt.Host,
		"--server_port=" + itoa(f.ServerPort),
		"--controller_port=" + itoa(f.TManagerControllerPort),
		"--stats_port=" + itoa(f.TManagerStatsPort),
		"--config_file=" + f.HeronInternalsConfigFile,
		"--override_config_file=" + f.OverrideConfigFile,
		"--metrics_sinks_yaml=" + f.MetricsSinksConfigFile,
		"--metricsmgr_port=" + itoa(f.MetricsManagerPort),
		"--ckptmgr_port=" + itoa(f.CheckpointManagerPort),
	})))
	ps[0].TCPPort = f.ServerPort
	if strings.ToLower(f.MetricsCacheManagerMode) != "disabled" {
		argv := []string{b.java(), "-Xmx1024M", "-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true"}
		argv = append(argv, b.gc("metricscache")...)
		argv = append(argv, "-cp", f.MetricsCacheManagerClasspath,
			"org.apache.heron.metricscachemgr.MetricsCacheManager",
			"--metricscache_id", "metricscache-0",
			"--server_port", itoa(f.MetricsCacheManagerServerPort),
			"--stats_port", itoa(f.MetricsCacheManagerStatsPort),
			"--topology_name", f.TopologyName,
			"--topology_id", f.TopologyID,
			"--system_config_file", f.HeronInternalsConfigFile,
			"--override_config_file", f.OverrideConfigFile,
			"--sink_config_file", f.MetricsSinksConfigFile,
			"--cluster", f.Cluster,
			"--role", f.Role,
			"--environment", f.Environment)
		p := b.proc(NameMetricsCache, argv)
		p.TCPPort = f.MetricsCacheManagerServerPort
		ps = append(ps, p)
	}
	if strings.ToLower(f.HealthManagerMode) != "disabled" {
		argv := []string{b.java(), "-Xmx1024M", "-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true"}
		argv = append(argv, b.gc("healthmgr")...)
		argv = append(argv, "-cp", f.SchedulerClasspath+":"+f.HealthManagerClasspath,
			"org.apache.heron.healthmgr.HealthManager",
			"--cluster", f.Cluster,
			"--role", f.Role,
			"--environment", f.Environment,
			"--topology_name", f.TopologyName,
			"--metricsmgr_port", itoa(f.MetricsManagerPort))
		ps = append(ps, b.proc(NameHealthMgr, argv))
	}
	ps = append(ps, b.metricsmgr())
	if f.IsStateful {
		ps = append(ps, b.ckptmgr())
	}
	ps = append(ps, b.shell(fmt.Sprintf("heron-shell-%d", f.Shard)))
	return ps, nil
}

func (b *builder) workerProcesses(cp ContainerPlan) ([]Process, error) {
	f := b.f
	k := f.Shard
	var ids []string
	for _, in := range cp.Instances {
		ids = append(ids, InstanceID(k, in.Component, in.TaskID))
	}
	stmgr := b.heapCheck(b.proc(fmt.Sprintf("stmgr-%d", k), []string{
		f.StmgrBinary,
		"--topology_name=" + f.TopologyName,
		"--topology_id=" + f.TopologyID,
		"--topologydefn_file=" + f.TopologyDefnFile,
		"--zkhostportlist=" + f.StateManagerConnection,
		"--zkroot=" + f.StateManagerRoot,
		"--stmgr_id=" + fmt.Sprintf("stmgr-%d", k),
		"--instance_ids=" + strings.Join(ids, ","),
		"--myhost=" + b.rt.Host,
		"--data_port=" + itoa(f.ServerPort),
		"--local_data_port=" + itoa(f.TManagerControllerPort),
		"--metricsmgr_port=" + itoa(f.MetricsManagerPort),
		"--shell_port=" + itoa(f.ShellPort),
		"--config_file=" + f.HeronInternalsConfigFile,
		"--override_config_file=" + f.OverrideConfigFile,
		"--ckptmgr_port=" + itoa(f.CheckpointManagerPort),
		"--ckptmgr_id=" + fmt.Sprintf("ckptmgr-%d", k),
		"--metricscachemgr_mode=" + strings.ToLower(f.MetricsCacheManagerMode),
	}))
	stmgr.TCPPort = f.TManagerControllerPort
	ps := []Process{stmgr, b.metricsmgr()}
	if f.IsStateful {
		ps = append(ps, b.ckptmgr())
	}
	for _, in := range cp.Instances {
		p, err := b.instance(in)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	ps = append(ps, b.shell(fmt.Sprintf("heron-shell-%d", k)))
	return ps, nil
}

func (b *builder) metricsmgr() Process {
	f := b.f
	name := fmt.Sprintf("metricsmgr-%d", f.Shard)
	argv := []string{b.java(), "-Xmx1024M", "-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true"}
	argv = append(argv, b.gc(name)...)
	argv = append(argv, "-cp", f.MetricsManagerClasspath,
		"org.apache.heron.metricsmgr.MetricsManager",
		"--id="+name,
		"--port="+itoa(f.MetricsManagerPort),
		"--topology="+f.TopologyName,
		"--cluster="+f.Cluster,
		"--role="+f.Role,
		"--environment="+f.Environment,
		"--topology-id="+f.TopologyID,
		"--system-config-file="+f.HeronInternalsConfigFile,
		"--override-config-file="+f.OverrideConfigFile,
		"--sink-config-file="+f.MetricsSinksConfigFile)
	p := b.proc(name, argv)
	p.TCPPort = f.MetricsManagerPort
	return p
}

func (b *builder) ckptmgr() Process {
	f := b.f
	name := fmt.Sprintf("ckptmgr-%d", f.Shard)
	mb := f.CheckpointManagerRAM / (1024 * 1024)
	argv := []string{b.java(), fmt.Sprintf("-Xms%dM", mb), fmt.Sprintf("-Xmx%dM", mb),
		"-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true"}
	argv = append(argv, b.gc(name)...)
	argv = append(argv, "-cp", f.CheckpointManagerClasspath,
		"org.apache.heron.ckptmgr.CheckpointManager",
		"-t"+f.TopologyName,
		"-i"+f.TopologyID,
		"-c"+name,
		"-p"+itoa(f.CheckpointManagerPort),
		"-f"+f.StatefulConfigFile,
		"-o"+f.OverrideConfigFile,
		"-g"+f.HeronInternalsConfigFile)
	p := b.proc(name, argv)
	p.TCPPort = f.CheckpointManagerPort
	return p
}

func (b *builder) shell(name string) Process {
	f := b.f
	p := b.proc(name, []string{
		f.HeronShellBinary,
		"--port=" + itoa(f.ShellPort),
		"--log_file_prefix=" + b.rt.LogDir + "/heron-shell-" + itoa(f.Shard) + ".log",
		"--secret=" + f.TopologyID,
	})
	p.HealthURL = fmt.Sprintf("http://127.0.0.1:%d/health", f.ShellPort)
	return p
}

func (b *builder) instance(in InstancePlan) (Process, error) {
	f := b.f
	k := f.Shard
	id := InstanceID(k, in.Component, in.TaskID)
	stmgrID := fmt.Sprintf("stmgr-%d", k)
	switch f.PkgType {
	case "pex", "so", "dylib":
		argv := []string{f.PythonInstanceBinary}
		if f.PkgType != "pex" {
			argv[0] = f.CppInstanceBinary
		}
		argv = append(argv,
			"--topology_name="+f.TopologyName,
			"--topology_id="+f.TopologyID,
			"--instance_id="+id,
			"--component_name="+in.Component,
			"--task_id="+itoa(in.TaskID),
			"--component_index="+itoa(in.Index),
			"--stmgr_id="+stmgrID,
			"--stmgr_port="+itoa(f.TManagerControllerPort),
			"--metricsmgr_port="+itoa(f.MetricsManagerPort),
			"--config_file="+f.HeronInternalsConfigFile,
			"--override_config_file="+f.OverrideConfigFile)
		if f.PkgType == "pex" {
			ram, ok := f.ComponentRAMMap[in.Component]
			if !ok {
				return Process{}, fmt.Errorf("component %q of %s has no entry in --component-ram-map", in.Component, id)
			}
			argv = append(argv, "--topology_pex="+f.TopologyBinaryFile, "--max_ram="+strconv.FormatInt(ram, 10))
		} else {
			bin := f.TopologyBinaryFile
			if !filepath.IsAbs(bin) {
				bin = filepath.Join(b.rt.Dir, bin)
			}
			argv = append(argv, "--topology_binary="+bin)
		}
		return b.proc(id, argv), nil
	}
	ram, ok := f.ComponentRAMMap[in.Component]
	if !ok {
		return Process{}, fmt.Errorf("component %q of %s has no entry in --component-ram-map", in.Component, id)
	}
	const codeCacheMB, metaspaceMB = 64, 128
	heap := ram/(1024*1024) - codeCacheMB - metaspaceMB
	if heap <= 0 {
		return Process{}, fmt.Errorf("component %q: %d bytes of RAM leave no heap after %d MB of code cache and metaspace", in.Component, ram, codeCacheMB+metaspaceMB)
	}
	v := strings.TrimSpace(b.rt.JavaVersion)
	meta := "MetaspaceSize"
	if strings.HasPrefix(v, "1.5") || strings.HasPrefix(v, "1.6") || strings.HasPrefix(v, "1.7") {
		meta = "PermSize"
	}
	argv := []string{b.java(), fmt.Sprintf("-Xmx%dM", heap), fmt.Sprintf("-Xms%dM", heap)}
	if javaMajor(v) < 11 {
		argv = append(argv, fmt.Sprintf("-Xmn%dM", heap/2))
	}
	argv = append(argv,
		fmt.Sprintf("-XX:Max%s=%dM", meta, metaspaceMB),
		fmt.Sprintf("-XX:%s=%dM", meta, metaspaceMB),
		fmt.Sprintf("-XX:ReservedCodeCacheSize=%dM", codeCacheMB),
		"-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true")
	argv = append(argv, b.gc(id)...)
	argv = append(argv, "-cp", f.InstanceClasspath+":"+f.Classpath)
	debugPort := 0
	if n := len(b.debugPorts); n > 0 {
		// Heron pops from the end of the list.
		debugPort = b.debugPorts[n-1]
		b.debugPorts = b.debugPorts[:n-1]
		argv = append(argv, "-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address="+itoa(debugPort))
	}
	argv = append(argv, strings.Fields(f.InstanceJVMOpts)...)
	argv = append(argv, strings.Fields(f.ComponentJVMOpts[in.Component])...)
	argv = append(argv, "org.apache.heron.instance.HeronInstance",
		"-topology_name", f.TopologyName,
		"-topology_id", f.TopologyID,
		"-instance_id", id,
		"-component_name", in.Component,
		"-task_id", itoa(in.TaskID),
		"-component_index", itoa(in.Index),
		"-stmgr_id", stmgrID,
		"-stmgr_port", itoa(f.TManagerControllerPort),
		"-metricsmgr_port", itoa(f.MetricsManagerPort),
		"-system_config_file", f.HeronInternalsConfigFile,
		"-override_config_file", f.OverrideConfigFile)
	if debugPort != 0 {
		argv = append(argv, "-remote_debugger_port", itoa(debugPort))
	}
	return b.proc(id, argv), nil
}

// Changes is the outcome of a packing-plan change (reference section 1.8).
type Changes struct {
	Keep  []string  // running, unchanged
	Stop  []string  // running, to be stopped (removed, changed, or a stream manager)
	Start []Process // to be started
}

// Diff decides which processes to keep, stop and start when the desired set
// changes: a process is kept only when its name is still desired, its argv is
// identical and it is not a stream manager (always restarted to reset its state).
func Diff(current map[string][]string, desired []Process) Changes {
	var c Changes
	want := map[string]Process{}
	for _, p := range desired {
		want[p.Name] = p
	}
	keep := map[string]bool{}
	for name, argv := range current {
		p, ok := want[name]
		if ok && equalArgv(argv, p.Argv) && !strings.HasPrefix(name, "stmgr-") {
			keep[name] = true
			c.Keep = append(c.Keep, name)
		} else {
			c.Stop = append(c.Stop, name)
		}
	}
	for _, p := range desired {
		if !keep[p.Name] {
			c.Start = append(c.Start, p)
		}
	}
	sort.Strings(c.Keep)
	sort.Strings(c.Stop)
	return c
}

func equalArgv(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
