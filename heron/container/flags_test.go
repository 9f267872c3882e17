package container

import (
	"strings"
	"testing"
)

// exampleArgs is a heron-executor command line as Heron's local scheduler builds it.
func exampleArgs(shard string) []string {
	return []string{
		"--shard=" + shard,
		"--topology-name=wc",
		"--topology-id=wc-abc",
		"--topology-defn-file=wc.defn",
		"--state-manager-connection=LOCALMODE",
		"--state-manager-root=/state",
		"--state-manager-config-file=./heron-conf/statemgr.yaml",
		"--tmanager-binary=./heron-core/bin/heron-tmanager",
		"--stmgr-binary=./heron-core/bin/heron-stmgr",
		"--metrics-manager-classpath=./heron-core/lib/metricsmgr/*",
		"--instance-jvm-opts=" + EncodeJavaOpts("-Dx=1 -Dy=2"),
		"--classpath=wc.jar",
		"--heron-internals-config-file=./heron-conf/heron_internals.yaml",
		"--override-config-file=./heron-conf/override.yaml",
		"--component-ram-map=word:1073741824,count:536870912",
		"--component-jvm-opts=" + EncodeJavaOpts(`{"Y291bnQ=":"LVhYOitVc2VOVU1B"}`), // count: -XX:+UseNUMA
		"--pkg-type=jar",
		"--topology-binary-file=wc.jar",
		"--heron-java-home=/jdk",
		"--heron-shell-binary=./heron-core/bin/heron-shell",
		"--cluster=local",
		"--role=me",
		"--environment=default",
		"--instance-classpath=./heron-core/lib/instance/*",
		"--metrics-sinks-config-file=./heron-conf/metrics_sinks.yaml",
		"--scheduler-classpath=./heron-core/lib/scheduler/*",
		"--scheduler-port=6000",
		"--python-instance-binary=./heron-core/bin/heron-python-instance",
		"--cpp-instance-binary=./heron-core/bin/heron-cpp-instance",
		"--metricscache-manager-classpath=./heron-core/lib/metricscachemgr/*",
		"--metricscache-manager-server-port=6001",
		"--metricscache-manager-stats-port=6002",
		"--metricscache-manager-mode=disabled",
		"--is-stateful=false",
		"--checkpoint-manager-classpath=./heron-core/lib/ckptmgr/*",
		"--checkpoint-manager-port=6003",
		"--checkpoint-manager-ram=1073741824",
		"--stateful-config-file=./heron-conf/stateful.yaml",
		"--health-manager-mode=disabled",
		"--health-manager-classpath=./heron-core/lib/healthmgr/*",
		"--server-port=6004",
		"--tmanager-controller-port=6005",
		"--tmanager-stats-port=6006",
		"--shell-port=6007",
		"--metrics-manager-port=6008",
	}
}

func TestParseFlags(t *testing.T) {
	f, err := ParseFlags(exampleArgs("1"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Shard != 1 || f.TopologyName != "wc" || f.ServerPort != 6004 || f.MetricsManagerPort != 6008 {
		t.Errorf("ParseFlags: got shard %d name %q server %d metrics %d", f.Shard, f.TopologyName, f.ServerPort, f.MetricsManagerPort)
	}
	if f.InstanceJVMOpts != "-Dx=1 -Dy=2" {
		t.Errorf("InstanceJVMOpts = %q, want %q", f.InstanceJVMOpts, "-Dx=1 -Dy=2")
	}
	if got := f.ComponentJVMOpts["count"]; got != "-XX:+UseNUMA" {
		t.Errorf("ComponentJVMOpts[count] = %q, want -XX:+UseNUMA", got)
	}
	if f.ComponentRAMMap["word"] != 1<<30 || f.ComponentRAMMap["count"] != 1<<29 {
		t.Errorf("ComponentRAMMap = %v", f.ComponentRAMMap)
	}
	// Round trip through Args.
	g, err := ParseFlags(f.Args())
	if err != nil {
		t.Fatalf("ParseFlags(Args()): %v", err)
	}
	if strings.Join(g.Args(), " ") != strings.Join(f.Args(), " ") {
		t.Errorf("Args round trip differs:\n%v\n%v", g.Args(), f.Args())
	}
}

func TestParseFlagsAliasesAndForms(t *testing.T) {
	args := exampleArgs("0")
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--tmanager-binary="):
			args[i] = "--tmaster-binary=./heron-core/bin/heron-tmaster"
		case strings.HasPrefix(a, "--tmanager-controller-port="):
			args[i] = "--tmaster-controller-port=7005"
		case strings.HasPrefix(a, "--tmanager-stats-port="):
			args[i] = "--tmaster-stats-port=7006"
		case strings.HasPrefix(a, "--server-port="):
			args[i] = "--master-port=7004"
		case strings.HasPrefix(a, "--metricscache-manager-server-port="):
			args[i] = "--metricscache-manager-master-port=7001"
		}
	}
	// Space-separated form, an old "&equals;" escape and the optional flags.
	args = append(args, "--jvm-remote-debugger-ports", "9001,9002", "--verbose-gc")
	f, err := ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	if f.TManagerBinary != "./heron-core/bin/heron-tmaster" || f.TManagerControllerPort != 7005 ||
		f.TManagerStatsPort != 7006 || f.ServerPort != 7004 || f.MetricsCacheManagerServerPort != 7001 {
		t.Errorf("aliases not applied: %+v", f)
	}
	if len(f.JVMRemoteDebuggerPorts) != 2 || f.JVMRemoteDebuggerPorts[1] != 9002 || !f.VerboseGC {
		t.Errorf("optional flags: ports %v verbose %v", f.JVMRemoteDebuggerPorts, f.VerboseGC)
	}
	if s, err := DecodeJavaOpts(`"LVhteDEwZw&equals;&equals;"`); err != nil || s != "-Xmx10g" {
		t.Errorf("DecodeJavaOpts(&equals;) = %q, %v; want -Xmx10g", s, err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	without := func(name string) []string {
		var out []string
		for _, a := range exampleArgs("1") {
			if !strings.HasPrefix(a, "--"+name+"=") {
				out = append(out, a)
			}
		}
		return out
	}
	replace := func(name, value string) []string {
		out := without(name)
		return append(out, "--"+name+"="+value)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown", append(exampleArgs("1"), "--bogus=1"), "unknown flag --bogus"},
		{"missing", without("stmgr-binary"), "missing required flag --stmgr-binary"},
		{"missing two", append(without("shell-port")[:0:0], without("shell-port")[1:]...), "--shard"},
		{"bad port", replace("shell-port", "x"), "flag --shell-port"},
		{"bad pkg", replace("pkg-type", "zip"), "flag --pkg-type: unknown package type"},
		{"bad ram map", replace("component-ram-map", "word"), "flag --component-ram-map"},
		{"bad jvm opts", replace("instance-jvm-opts", "%%%"), "flag --instance-jvm-opts"},
		{"bad stateful", replace("is-stateful", "maybe"), "flag --is-stateful"},
		{"positional", append(exampleArgs("1"), "extra"), `unexpected argument "extra"`},
		{"twice", append(exampleArgs("1"), "--shard=2"), "--shard given twice"},
		{"no value", append(without("role"), "--role"), "flag --role needs a value"},
	}
	for _, tt := range tests {
		_, err := ParseFlags(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseFlags error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// A Flags built field by field (as the schedulers do) renders a command line
// that parses, with egret's defaults for what was left zero.
func TestArgsOfHandBuiltFlags(t *testing.T) {
	f, err := ParseFlags(exampleArgs("1"))
	if err != nil {
		t.Fatal(err)
	}
	f.RestartBudget, f.BackoffMin, f.BackoffMax, f.StopGrace, f.HealthInterval, f.HealthGrace = Budget{}, 0, 0, 0, 0, 0
	g, err := ParseFlags(f.Args())
	if err != nil {
		t.Fatalf("ParseFlags(Args()) of zero egret settings: %v", err)
	}
	if g.RestartBudget != DefaultRestartBudget || g.StopGrace != DefaultStopGrace || g.HealthInterval != DefaultHealthInterval {
		t.Errorf("defaults not applied: %+v", g)
	}
}
