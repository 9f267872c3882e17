// Package container is egret's Heron container runtime: a drop-in replacement
// for Heron's heron-executor. It parses the executor's flags, computes from the
// packing plan which daemons a shard runs with exactly Heron's command lines,
// supervises them through proc, follows packing-plan changes and keeps the pid
// files, logs and a status file (egret-status-<shard>.json) in the sandbox.
package container

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flags are the values of Heron's heron-executor command line, decoded.
type Flags struct {
	Shard                         int
	TopologyName                  string
	TopologyID                    string
	TopologyDefnFile              string
	StateManagerConnection        string
	StateManagerRoot              string
	StateManagerConfigFile        string
	TManagerBinary                string
	StmgrBinary                   string
	MetricsManagerClasspath       string
	InstanceJVMOpts               string // decoded
	Classpath                     string
	HeronInternalsConfigFile      string
	OverrideConfigFile            string
	ComponentRAMMap               map[string]int64  // bytes
	ComponentJVMOpts              map[string]string // decoded, by component name
	PkgType                       string
	TopologyBinaryFile            string
	HeronJavaHome                 string
	HeronShellBinary              string
	Cluster                       string
	Role                          string
	Environment                   string
	InstanceClasspath             string
	MetricsSinksConfigFile        string
	SchedulerClasspath            string
	SchedulerPort                 int
	PythonInstanceBinary          string
	CppInstanceBinary             string
	MetricsCacheManagerClasspath  string
	MetricsCacheManagerServerPort int
	MetricsCacheManagerStatsPort  int
	MetricsCacheManagerMode       string
	IsStateful                    bool
	CheckpointManagerClasspath    string
	CheckpointManagerPort         int
	CheckpointManagerRAM          int64 // bytes
	StatefulConfigFile            string
	HealthManagerMode             string
	HealthManagerClasspath        string
	ServerPort                    int
	TManagerControllerPort        int
	TManagerStatsPort             int
	ShellPort                     int
	MetricsManagerPort            int
	VerboseGC                     bool
	JVMRemoteDebuggerPorts        []int

	// egret's own flags, which Heron's schedulers never pass.

	// DryRun prints the processes as JSON and exits (--dry-run).
	DryRun bool
	// RestartBudget allows at most Restarts restarts of one process within
	// Window before the executor gives up (--restart-budget=N/window).
	RestartBudget Budget
	// BackoffMin and BackoffMax bound the exponential restart delay
	// (--restart-backoff=min/max).
	BackoffMin, BackoffMax time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL (--stop-grace).
	StopGrace time.Duration
	// HealthInterval is the time between health checks (--health-interval);
	// HealthGrace is how long after a start failures do not count until the
	// first success (--health-grace).
	HealthInterval, HealthGrace time.Duration
}

// Budget is a number of restarts allowed within a window.
type Budget struct {
	Restarts int
	Window   time.Duration
}

// Defaults of egret's own flags. Heron restarts after a fixed 10 s and gives
// up after 150 runs in a lifetime; egret backs off exponentially and counts
// restarts in a sliding window, so a daemon that crashes once a day never
// takes its container down.
var (
	DefaultRestartBudget = Budget{Restarts: 10, Window: 5 * time.Minute}
	DefaultBackoffMin    = 500 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultStopGrace     = 10 * time.Second
	// Daemons get a minute to come up; then three failed checks in a row
	// restart them.
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthGrace    = time.Minute
)

// flagKind says how a flag's value is parsed.
type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindBool   // a switch: present means true; --x=true/false also accepted
	kindOpt    // optional string
	kindOptInt // optional list of ints
)

type flagDef struct {
	name string
	kind flagKind
	set  func(f *Flags, v string) error
}

func str(p func(*Flags) *string) func(*Flags, string) error {
	return func(f *Flags, v string) error { *p(f) = v; return nil }
}

func port(p func(*Flags) *int) func(*Flags, string) error {
	return func(f *Flags, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("not a port number: %q", v)
		}
		*p(f) = n
		return nil
	}
}

func duration(p func(*Flags) *time.Duration) func(*Flags, string) error {
	return func(f *Flags, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("not a duration: %q", v)
		}
		*p(f) = d
		return nil
	}
}

// flagDefs lists every flag of Heron's heron-executor (HEAD), in ExecutorFlag order.
var flagDefs = []flagDef{
	{"shard", kindInt, func(f *Flags, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("not a shard number: %q", v)
		}
		f.Shard = n
		return nil
	}},
	{"topology-name", kindString, str(func(f *Flags) *string { return &f.TopologyName })},
	{"topology-id", kindString, str(func(f *Flags) *string { return &f.TopologyID })},
	{"topology-defn-file", kindString, str(func(f *Flags) *string { return &f.TopologyDefnFile })},
	{"state-manager-connection", kindString, str(func(f *Flags) *string { return &f.StateManagerConnection })},
	{"state-manager-root", kindString, str(func(f *Flags) *string { return &f.StateManagerRoot })},
	{"state-manager-config-file", kindString, str(func(f *Flags) *string { return &f.StateManagerConfigFile })},
	{"tmanager-binary", kindString, str(func(f *Flags) *string { return &f.TManagerBinary })},
	{"stmgr-binary", kindString, str(func(f *Flags) *string { return &f.StmgrBinary })},
	{"metrics-manager-classpath", kindString, str(func(f *Flags) *string { return &f.MetricsManagerClasspath })},
	{"instance-jvm-opts", kindString, func(f *Flags, v string) error {
		s, err := DecodeJavaOpts(v)
		f.InstanceJVMOpts = s
		return err
	}},
	{"classpath", kindString, str(func(f *Flags) *string { return &f.Classpath })},
	{"heron-internals-config-file", kindString, str(func(f *Flags) *string { return &f.HeronInternalsConfigFile })},
	{"override-config-file", kindString, str(func(f *Flags) *string { return &f.OverrideConfigFile })},
	{"component-ram-map", kindString, func(f *Flags, v string) error {
		m, err := parseRAMMap(v)
		f.ComponentRAMMap = m
		return err
	}},
	{"component-jvm-opts", kindString, func(f *Flags, v string) error {
		m, err := decodeComponentJVMOpts(v)
		f.ComponentJVMOpts = m
		return err
	}},
	{"pkg-type", kindString, func(f *Flags, v string) error {
		switch v {
		case "jar", "tar", "pex", "so", "dylib":
			f.PkgType = v
			return nil
		}
		return fmt.Errorf("unknown package type %q (want jar, tar, pex, so or dylib)", v)
	}},
	{"topology-binary-file", kindString, str(func(f *Flags) *string { return &f.TopologyBinaryFile })},
	{"heron-java-home", kindString, str(func(f *Flags) *string { return &f.HeronJavaHome })},
	{"heron-shell-binary", kindString, str(func(f *Flags) *string { return &f.HeronShellBinary })},
	{"cluster", kindString, str(func(f *Flags) *string { return &f.Cluster })},
	{"role", kindString, str(func(f *Flags) *string { return &f.Role })},
	{"environment", kindString, str(func(f *Flags) *string { return &f.Environment })},
	{"instance-classpath", kindString, str(func(f *Flags) *string { return &f.InstanceClasspath })},
	{"metrics-sinks-config-file", kindString, str(func(f *Flags) *string { return &f.MetricsSinksConfigFile })},
	{"scheduler-classpath", kindString, str(func(f *Flags) *string { return &f.SchedulerClasspath })},
	{"scheduler-port", kindString, port(func(f *Flags) *int { return &f.SchedulerPort })},
	{"python-instance-binary", kindString, str(func(f *Flags) *string { return &f.PythonInstanceBinary })},
	{"cpp-instance-binary", kindString, str(func(f *Flags) *string { return &f.CppInstanceBinary })},
	{"metricscache-manager-classpath", kindString, str(func(f *Flags) *string { return &f.MetricsCacheManagerClasspath })},
	{"metricscache-manager-server-port", kindString, port(func(f *Flags) *int { return &f.MetricsCacheManagerServerPort })},
	{"metricscache-manager-stats-port", kindString, port(func(f *Flags) *int { return &f.MetricsCacheManagerStatsPort })},
	{"metricscache-manager-mode", kindOpt, str(func(f *Flags) *string { return &f.MetricsCacheManagerMode })},
	{"is-stateful", kindString, func(f *Flags, v string) error {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		f.IsStateful = b
		return nil
	}},
	{"checkpoint-manager-classpath", kindString, str(func(f *Flags) *string { return &f.CheckpointManagerClasspath })},
	{"checkpoint-manager-port", kindString, port(func(f *Flags) *int { return &f.CheckpointManagerPort })},
	{"checkpoint-manager-ram", kindString, func(f *Flags, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("not a number of bytes: %q", v)
		}
		f.CheckpointManagerRAM = n
		return nil
	}},
	{"stateful-config-file", kindString, str(func(f *Flags) *string { return &f.StatefulConfigFile })},
	{"health-manager-mode", kindString, str(func(f *Flags) *string { return &f.HealthManagerMode })},
	{"health-manager-classpath", kindString, str(func(f *Flags) *string { return &f.HealthManagerClasspath })},
	{"server-port", kindString, port(func(f *Flags) *int { return &f.ServerPort })},
	{"tmanager-controller-port", kindString, port(func(f *Flags) *int { return &f.TManagerControllerPort })},
	{"tmanager-stats-port", kindString, port(func(f *Flags) *int { return &f.TManagerStatsPort })},
	{"shell-port", kindString, port(func(f *Flags) *int { return &f.ShellPort })},
	{"metrics-manager-port", kindString, port(func(f *Flags) *int { return &f.MetricsManagerPort })},
	{"verbose-gc", kindBool, func(f *Flags, v string) error {
		b, err := strconv.ParseBool(v)
		f.VerboseGC = b
		return err
	}},
	{"jvm-remote-debugger-ports", kindOptInt, func(f *Flags, v string) error {
		f.JVMRemoteDebuggerPorts = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > 65535 {
				return fmt.Errorf("not a port number: %q", s)
			}
			f.JVMRemoteDebuggerPorts = append(f.JVMRemoteDebuggerPorts, n)
		}
		return nil
	}},
	{"dry-run", kindBool, func(f *Flags, v string) error {
		b, err := strconv.ParseBool(v)
		f.DryRun = b
		return err
	}},
	{"restart-budget", kindOpt, func(f *Flags, v string) error {
		n, w, ok := strings.Cut(v, "/")
		r, err := strconv.Atoi(n)
		if !ok || err != nil || r < 0 {
			return fmt.Errorf("want <restarts>/<window>, e.g. 10/5m: %q", v)
		}
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 {
			return fmt.Errorf("want <restarts>/<window>, e.g. 10/5m: %q", v)
		}
		f.RestartBudget = Budget{r, d}
		return nil
	}},
	{"restart-backoff", kindOpt, func(f *Flags, v string) error {
		a, b, ok := strings.Cut(v, "/")
		lo, err1 := time.ParseDuration(a)
		hi, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil || lo < 0 || hi < lo {
			return fmt.Errorf("want <min>/<max>, e.g. 1s/1m: %q", v)
		}
		f.BackoffMin, f.BackoffMax = lo, hi
		return nil
	}},
	{"stop-grace", kindOpt, duration(func(f *Flags) *time.Duration { return &f.StopGrace })},
	{"health-interval", kindOpt, func(f *Flags, v string) error {
		if err := duration(func(f *Flags) *time.Duration { return &f.HealthInterval })(f, v); err != nil {
			return err
		}
		if f.HealthInterval == 0 {
			return fmt.Errorf("must be positive: %q", v)
		}
		return nil
	}},
	{"health-grace", kindOpt, duration(func(f *Flags) *time.Duration { return &f.HealthGrace })},
}

// flagAliases maps the pre-2020 spellings (before "topology master" became
// "topology manager") to today's names.
var flagAliases = map[string]string{
	"tmaster-binary":                   "tmanager-binary",
	"tmaster-controller-port":          "tmanager-controller-port",
	"tmaster-stats-port":               "tmanager-stats-port",
	"master-port":                      "server-port",
	"metricscache-manager-master-port": "metricscache-manager-server-port",
}

// FlagNames returns every flag name heron-executor accepts (aliases excluded).
func FlagNames() []string {
	var names []string
	for _, d := range flagDefs {
		names = append(names, d.name)
	}
	return names
}

// ParseFlags parses heron-executor's arguments (without the program name), in
// --key=value or --key value form. An unknown flag, a missing required flag or
// a bad value is an error naming the flag.
func ParseFlags(args []string) (*Flags, error) {
	defs := make(map[string]*flagDef, len(flagDefs))
	for i := range flagDefs {
		defs[flagDefs[i].name] = &flagDefs[i]
	}
	f := &Flags{MetricsCacheManagerMode: "disabled",
		RestartBudget: DefaultRestartBudget, BackoffMin: DefaultBackoffMin, BackoffMax: DefaultBackoffMax,
		StopGrace: DefaultStopGrace, HealthInterval: DefaultHealthInterval, HealthGrace: DefaultHealthGrace}
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") || a == "--" {
			return nil, fmt.Errorf("unexpected argument %q: heron-executor takes only --key=value flags", a)
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		canonical := name
		if n, ok := flagAliases[name]; ok {
			canonical = n
		}
		d, ok := defs[canonical]
		if !ok {
			return nil, fmt.Errorf("unknown flag --%s", name)
		}
		if !hasVal {
			if d.kind == kindBool {
				val = "true"
			} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				i++
				val = args[i]
			} else {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
		}
		if seen[canonical] {
			return nil, fmt.Errorf("flag --%s given twice", name)
		}
		seen[canonical] = true
		if err := d.set(f, val); err != nil {
			return nil, fmt.Errorf("flag --%s: %w", name, err)
		}
	}
	var missing []string
	for _, d := range flagDefs {
		if (d.kind == kindString || d.kind == kindInt) && !seen[d.name] {
			missing = append(missing, "--"+d.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing required flag %s", strings.Join(missing, ", "))
	}
	return f, nil
}

// Args renders f back into heron-executor's command line (--key=value form,
// today's names), the way Heron's schedulers build it.
func (f *Flags) Args() []string {
	a := []string{
		"--shard=" + strconv.Itoa(f.Shard),
		"--topology-name=" + f.TopologyName,
		"--topology-id=" + f.TopologyID,
		"--topology-defn-file=" + f.TopologyDefnFile,
		"--state-manager-connection=" + f.StateManagerConnection,
		"--state-manager-root=" + f.StateManagerRoot,
		"--state-manager-config-file=" + f.StateManagerConfigFile,
		"--tmanager-binary=" + f.TManagerBinary,
		"--stmgr-binary=" + f.StmgrBinary,
		"--metrics-manager-classpath=" + f.MetricsManagerClasspath,
		"--instance-jvm-opts=" + EncodeJavaOpts(f.InstanceJVMOpts),
		"--classpath=" + f.Classpath,
		"--heron-internals-config-file=" + f.HeronInternalsConfigFile,
		"--override-config-file=" + f.OverrideConfigFile,
		"--component-ram-map=" + formatRAMMap(f.ComponentRAMMap),
		"--component-jvm-opts=" + encodeComponentJVMOpts(f.ComponentJVMOpts),
		"--pkg-type=" + f.PkgType,
		"--topology-binary-file=" + f.TopologyBinaryFile,
		"--heron-java-home=" + f.HeronJavaHome,
		"--heron-shell-binary=" + f.HeronShellBinary,
		"--cluster=" + f.Cluster,
		"--role=" + f.Role,
		"--environment=" + f.Environment,
		"--instance-classpath=" + f.InstanceClasspath,
		"--metrics-sinks-config-file=" + f.MetricsSinksConfigFile,
		"--scheduler-classpath=" + f.SchedulerClasspath,
		"--scheduler-port=" + strconv.Itoa(f.SchedulerPort),
		"--python-instance-binary=" + f.PythonInstanceBinary,
		"--cpp-instance-binary=" + f.CppInstanceBinary,
		"--metricscache-manager-classpath=" + f.MetricsCacheManagerClasspath,
		"--metricscache-manager-server-port=" + strconv.Itoa(f.MetricsCacheManagerServerPort),
		"--metricscache-manager-stats-port=" + strconv.Itoa(f.MetricsCacheManagerStatsPort),
		"--metricscache-manager-mode=" + f.MetricsCacheManagerMode,
		"--is-stateful=" + strconv.FormatBool(f.IsStateful),
		"--checkpoint-manager-classpath=" + f.CheckpointManagerClasspath,
		"--checkpoint-manager-port=" + strconv.Itoa(f.CheckpointManagerPort),
		"--checkpoint-manager-ram=" + strconv.FormatInt(f.CheckpointManagerRAM, 10),
		"--stateful-config-file=" + f.StatefulConfigFile,
		"--health-manager-mode=" + f.HealthManagerMode,
		"--health-manager-classpath=" + f.HealthManagerClasspath,
		"--server-port=" + strconv.Itoa(f.ServerPort),
		"--tmanager-controller-port=" + strconv.Itoa(f.TManagerControllerPort),
		"--tmanager-stats-port=" + strconv.Itoa(f.TManagerStatsPort),
		"--shell-port=" + strconv.Itoa(f.ShellPort),
		"--metrics-manager-port=" + strconv.Itoa(f.MetricsManagerPort),
	}
	if f.VerboseGC {
		a = append(a, "--verbose-gc")
	}
	if len(f.JVMRemoteDebuggerPorts) > 0 {
		var ps []string
		for _, p := range f.JVMRemoteDebuggerPorts {
			ps = append(ps, strconv.Itoa(p))
		}
		a = append(a, "--jvm-remote-debugger-ports="+strings.Join(ps, ","))
	}
	if f.DryRun {
		a = append(a, "--dry-run")
	}
	// egret's own flags: zero values mean the defaults, so a Flags built
	// field by field renders only what its author set.
	if b := f.RestartBudget; b.Window > 0 && b != DefaultRestartBudget {
		a = append(a, fmt.Sprintf("--restart-budget=%d/%s", b.Restarts, b.Window))
	}
	if f.BackoffMax > 0 && (f.BackoffMin != DefaultBackoffMin || f.BackoffMax != DefaultBackoffMax) {
		a = append(a, fmt.Sprintf("--restart-backoff=%s/%s", f.BackoffMin, f.BackoffMax))
	}
	if f.StopGrace > 0 && f.StopGrace != DefaultStopGrace {
		a = append(a, "--stop-grace="+f.StopGrace.String())
	}
	if f.HealthInterval > 0 && f.HealthInterval != DefaultHealthInterval {
		a = append(a, "--health-interval="+f.HealthInterval.String())
	}
	if f.HealthGrace > 0 && f.HealthGrace != DefaultHealthGrace {
		a = append(a, "--health-grace="+f.HealthGrace.String())
	}
	return a
}

// DecodeJavaOpts reverses Heron's JVM-option encoding: surrounding double
// quotes, "=" escaped as "(61)" (or the older "&equals;"), base64.
func DecodeJavaOpts(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSuffix(s, `"`), `"`)
	s = strings.ReplaceAll(s, "(61)", "=")
	s = strings.ReplaceAll(s, "&equals;", "=")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("not base64-encoded JVM options: %w", err)
	}
	return string(b), nil
}

// EncodeJavaOpts is Heron's encoding of JVM options (SchedulerUtils.encodeJavaOpts).
func EncodeJavaOpts(s string) string {
	return `"` + strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(s)), "=", "(61)") + `"`
}

func decodeComponentJVMOpts(v string) (map[string]string, error) {
	js, err := DecodeJavaOpts(v)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if strings.TrimSpace(js) == "" {
		return m, nil
	}
	var enc map[string]string
	if err := json.Unmarshal([]byte(js), &enc); err != nil {
		return nil, fmt.Errorf("not a JSON map of component options: %w", err)
	}
	for k, v := range enc {
		name, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("component name %q is not base64: %w", k, err)
		}
		opts, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("options of component %q are not base64: %w", name, err)
		}
		m[string(name)] = string(opts)
	}
	return m, nil
}

func encodeComponentJVMOpts(m map[string]string) string {
	if len(m) == 0 {
		return EncodeJavaOpts("")
	}
	enc := map[string]string{}
	for k, v := range m {
		enc[base64.StdEncoding.EncodeToString([]byte(k))] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	b, _ := json.Marshal(enc) // a map of strings always marshals
	return EncodeJavaOpts(string(b))
}

func parseRAMMap(v string) (map[string]int64, error) {
	m := map[string]int64{}
	for _, kv := range strings.Split(v, ",") {
		if kv == "" {
			continue
		}
		k, n, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %q is not component:bytes", kv)
		}
		b, err := strconv.ParseInt(n, 10, 64)
		if err != nil || b <= 0 {
			return nil, fmt.Errorf("entry %q: %q is not a number of bytes", kv, n)
		}
		m[k] = b
	}
	return m, nil
}

func formatRAMMap(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+":"+strconv.FormatInt(m[k], 10))
	}
	return strings.Join(parts, ",")
}

// applyDefaults fills egret's own settings left zero (a Flags built field by
// field rather than parsed).
func (f *Flags) applyDefaults() {
	if f.RestartBudget.Window <= 0 {
		f.RestartBudget = DefaultRestartBudget
	}
	if f.BackoffMax <= 0 {
		f.BackoffMin, f.BackoffMax = DefaultBackoffMin, DefaultBackoffMax
	}
	if f.StopGrace <= 0 {
		f.StopGrace = DefaultStopGrace
	}
	if f.HealthInterval <= 0 {
		f.HealthInterval = DefaultHealthInterval
	}
	if f.HealthGrace <= 0 {
		f.HealthGrace = DefaultHealthGrace
	}
	if f.MetricsCacheManagerMode == "" {
		f.MetricsCacheManagerMode = "disabled"
	}
}
