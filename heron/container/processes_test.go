package container

import (
	"reflect"
	"strings"
	"testing"
)

const g1 = "-XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:+UseStringDeduplication -XX:MaxGCPauseMillis=100 -XX:InitiatingHeapOccupancyPercent=30 -XX:ParallelGCThreads=4"

func testPlan() *Plan {
	return &Plan{ID: "p1", Containers: []ContainerPlan{
		{ID: 1, Instances: []InstancePlan{{"word", 1, 0}, {"count", 3, 0}}},
		{ID: 2, Instances: []InstancePlan{{"word", 2, 1}, {"count", 4, 1}}},
	}}
}

func testRuntime() Runtime {
	return Runtime{Host: "h1", LogDir: "log-files", JavaVersion: "11.0.2", Dir: "/sb", Env: []string{"PATH=/bin"}}
}

func mustFlags(t *testing.T, shard string, extra ...string) *Flags {
	t.Helper()
	args := exampleArgs(shard)
	// later flags replace earlier ones of the same name
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		for i, a := range args {
			if strings.HasPrefix(a, name+"=") {
				args = append(args[:i], args[i+1:]...)
				break
			}
		}
		args = append(args, e)
	}
	f, err := ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func argvMap(ps []Process) (names []string, m map[string]string) {
	m = map[string]string{}
	for _, p := range ps {
		names = append(names, p.Name)
		m[p.Name] = strings.Join(p.Argv, " ")
	}
	return names, m
}

// The golden command lines below are written from reference section 1.6, not
// from this package's output.
func TestProcessesGolden(t *testing.T) {
	tests := []struct {
		name  string
		shard string
		extra []string
		rt    func(*Runtime)
		names []string
		argv  map[string]string
	}{
		{
			name:  "manager container, defaults",
			shard: "0",
			names: []string{"heron-tmanager", "metricsmgr-0", "heron-shell-0"},
			argv: map[string]string{
				"heron-tmanager": "./heron-core/bin/heron-tmanager --topology_name=wc --topology_id=wc-abc --zkhostportlist=LOCALMODE --zkroot=/state --myhost=h1 --server_port=6004 --controller_port=6005 --stats_port=6006 --config_file=./heron-conf/heron_internals.yaml --override_config_file=./heron-conf/override.yaml --metrics_sinks_yaml=./heron-conf/metrics_sinks.yaml --metricsmgr_port=6008 --ckptmgr_port=6003",
				"metricsmgr-0":   "/jdk/bin/java -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/metricsmgr/* org.apache.heron.metricsmgr.MetricsManager --id=metricsmgr-0 --port=6008 --topology=wc --cluster=local --role=me --environment=default --topology-id=wc-abc --system-config-file=./heron-conf/heron_internals.yaml --override-config-file=./heron-conf/override.yaml --sink-config-file=./heron-conf/metrics_sinks.yaml",
				"heron-shell-0":  "./heron-core/bin/heron-shell --port=6007 --log_file_prefix=log-files/heron-shell-0.log --secret=wc-abc",
			},
		},
		{
			name:  "manager container, metrics cache, health manager, stateful, verbose gc",
			shard: "0",
			extra: []string{"--metricscache-manager-mode=cluster", "--health-manager-mode=cluster", "--is-stateful=true", "--verbose-gc"},
			names: []string{"heron-tmanager", "heron-metricscache", "heron-healthmgr", "metricsmgr-0", "ckptmgr-0", "heron-shell-0"},
			argv: map[string]string{
				"heron-metricscache": "/jdk/bin/java -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -Xlog:gc*,safepoint=info:file=log-files/gc.metricscache.log:tags,time,uptime,level:filecount=5,filesize=100M -cp ./heron-core/lib/metricscachemgr/* org.apache.heron.metricscachemgr.MetricsCacheManager --metricscache_id metricscache-0 --server_port 6001 --stats_port 6002 --topology_name wc --topology_id wc-abc --system_config_file ./heron-conf/heron_internals.yaml --override_config_file ./heron-conf/override.yaml --sink_config_file ./heron-conf/metrics_sinks.yaml --cluster local --role me --environment default",
				"heron-healthmgr":    "/jdk/bin/java -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -Xlog:gc*,safepoint=info:file=log-files/gc.healthmgr.log:tags,time,uptime,level:filecount=5,filesize=100M -cp ./heron-core/lib/scheduler/*:./heron-core/lib/healthmgr/* org.apache.heron.healthmgr.HealthManager --cluster local --role me --environment default --topology_name wc --metricsmgr_port 6008",
				"ckptmgr-0":          "/jdk/bin/java -Xms1024M -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -Xlog:gc*,safepoint=info:file=log-files/gc.ckptmgr-0.log:tags,time,uptime,level:filecount=5,filesize=100M -cp ./heron-core/lib/ckptmgr/* org.apache.heron.ckptmgr.CheckpointManager -twc -iwc-abc -cckptmgr-0 -p6003 -f./heron-conf/stateful.yaml -o./heron-conf/override.yaml -g./heron-conf/heron_internals.yaml",
			},
		},
		{
			name:  "worker container, java 11",
			shard: "1",
			names: []string{"stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1"},
			argv: map[string]string{
				"stmgr-1":             "./heron-core/bin/heron-stmgr --topology_name=wc --topology_id=wc-abc --topologydefn_file=wc.defn --zkhostportlist=LOCALMODE --zkroot=/state --stmgr_id=stmgr-1 --instance_ids=container_1_word_1,container_1_count_3 --myhost=h1 --data_port=6004 --local_data_port=6005 --metricsmgr_port=6008 --shell_port=6007 --config_file=./heron-conf/heron_internals.yaml --override_config_file=./heron-conf/override.yaml --ckptmgr_port=6003 --ckptmgr_id=ckptmgr-1 --metricscachemgr_mode=disabled",
				"container_1_word_1":  "/jdk/bin/java -Xmx832M -Xms832M -XX:MaxMetaspaceSize=128M -XX:MetaspaceSize=128M -XX:ReservedCodeCacheSize=64M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/instance/*:wc.jar -Dx=1 -Dy=2 org.apache.heron.instance.HeronInstance -topology_name wc -topology_id wc-abc -instance_id container_1_word_1 -component_name word -task_id 1 -component_index 0 -stmgr_id stmgr-1 -stmgr_port 6005 -metricsmgr_port 6008 -system_config_file ./heron-conf/heron_internals.yaml -override_config_file ./heron-conf/override.yaml",
				"container_1_count_3": "/jdk/bin/java -Xmx320M -Xms320M -XX:MaxMetaspaceSize=128M -XX:MetaspaceSize=128M -XX:ReservedCodeCacheSize=64M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/instance/*:wc.jar -Dx=1 -Dy=2 -XX:+UseNUMA org.apache.heron.instance.HeronInstance -topology_name wc -topology_id wc-abc -instance_id container_1_count_3 -component_name count -task_id 3 -component_index 0 -stmgr_id stmgr-1 -stmgr_port 6005 -metricsmgr_port 6008 -system_config_file ./heron-conf/heron_internals.yaml -override_config_file ./heron-conf/override.yaml",
				"metricsmgr-1":        "/jdk/bin/java -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/metricsmgr/* org.apache.heron.metricsmgr.MetricsManager --id=metricsmgr-1 --port=6008 --topology=wc --cluster=local --role=me --environment=default --topology-id=wc-abc --system-config-file=./heron-conf/heron_internals.yaml --override-config-file=./heron-conf/override.yaml --sink-config-file=./heron-conf/metrics_sinks.yaml",
			},
		},
		{
			name:  "worker container, java 8, debugger ports, cluster metrics cache, stateful",
			shard: "2",
			extra: []string{"--jvm-remote-debugger-ports=9001,9002", "--metricscache-manager-mode=CLUSTER", "--is-stateful=true"},
			rt:    func(r *Runtime) { r.JavaVersion = "1.8.0_292" },
			names: []string{"stmgr-2", "metricsmgr-2", "ckptmgr-2", "container_2_word_2", "container_2_count_4", "heron-shell-2"},
			argv: map[string]string{
				"stmgr-2":             "./heron-core/bin/heron-stmgr --topology_name=wc --topology_id=wc-abc --topologydefn_file=wc.defn --zkhostportlist=LOCALMODE --zkroot=/state --stmgr_id=stmgr-2 --instance_ids=container_2_word_2,container_2_count_4 --myhost=h1 --data_port=6004 --local_data_port=6005 --metricsmgr_port=6008 --shell_port=6007 --config_file=./heron-conf/heron_internals.yaml --override_config_file=./heron-conf/override.yaml --ckptmgr_port=6003 --ckptmgr_id=ckptmgr-2 --metricscachemgr_mode=cluster",
				"container_2_word_2":  "/jdk/bin/java -Xmx832M -Xms832M -Xmn416M -XX:MaxMetaspaceSize=128M -XX:MetaspaceSize=128M -XX:ReservedCodeCacheSize=64M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/instance/*:wc.jar -agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=9002 -Dx=1 -Dy=2 org.apache.heron.instance.HeronInstance -topology_name wc -topology_id wc-abc -instance_id container_2_word_2 -component_name word -task_id 2 -component_index 1 -stmgr_id stmgr-2 -stmgr_port 6005 -metricsmgr_port 6008 -system_config_file ./heron-conf/heron_internals.yaml -override_config_file ./heron-conf/override.yaml -remote_debugger_port 9002",
				"container_2_count_4": "/jdk/bin/java -Xmx320M -Xms320M -Xmn160M -XX:MaxMetaspaceSize=128M -XX:MetaspaceSize=128M -XX:ReservedCodeCacheSize=64M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/instance/*:wc.jar -agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=9001 -Dx=1 -Dy=2 -XX:+UseNUMA org.apache.heron.instance.HeronInstance -topology_name wc -topology_id wc-abc -instance_id container_2_count_4 -component_name count -task_id 4 -component_index 1 -stmgr_id stmgr-2 -stmgr_port 6005 -metricsmgr_port 6008 -system_config_file ./heron-conf/heron_internals.yaml -override_config_file ./heron-conf/override.yaml -remote_debugger_port 9001",
				"ckptmgr-2":           "/jdk/bin/java -Xms1024M -Xmx1024M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/ckptmgr/* org.apache.heron.ckptmgr.CheckpointManager -twc -iwc-abc -cckptmgr-2 -p6003 -f./heron-conf/stateful.yaml -o./heron-conf/override.yaml -g./heron-conf/heron_internals.yaml",
			},
		},
		{
			name:  "java 7 uses PermSize",
			shard: "1",
			rt:    func(r *Runtime) { r.JavaVersion = "1.7.0_80" },
			names: []string{"stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1"},
			argv: map[string]string{
				"container_1_word_1": "/jdk/bin/java -Xmx832M -Xms832M -Xmn416M -XX:MaxPermSize=128M -XX:PermSize=128M -XX:ReservedCodeCacheSize=64M -XX:+PrintCommandLineFlags -Djava.net.preferIPv4Stack=true " + g1 + " -cp ./heron-core/lib/instance/*:wc.jar -Dx=1 -Dy=2 org.apache.heron.instance.HeronInstance -topology_name wc -topology_id wc-abc -instance_id container_1_word_1 -component_name word -task_id 1 -component_index 0 -stmgr_id stmgr-1 -stmgr_port 6005 -metricsmgr_port 6008 -system_config_file ./heron-conf/heron_internals.yaml -override_config_file ./heron-conf/override.yaml",
			},
		},
		{
			name:  "python instances",
			shard: "1",
			extra: []string{"--pkg-type=pex", "--topology-binary-file=wc.pex"},
			names: []string{"stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1"},
			argv: map[string]string{
				"container_1_word_1": "./heron-core/bin/heron-python-instance --topology_name=wc --topology_id=wc-abc --instance_id=container_1_word_1 --component_name=word --task_id=1 --component_index=0 --stmgr_id=stmgr-1 --stmgr_port=6005 --metricsmgr_port=6008 --config_file=./heron-conf/heron_internals.yaml --override_config_file=./heron-conf/override.yaml --topology_pex=wc.pex --max_ram=1073741824",
			},
		},
		{
			name:  "c++ instances",
			shard: "1",
			extra: []string{"--pkg-type=so", "--topology-binary-file=wc.so"},
			names: []string{"stmgr-1", "metricsmgr-1", "container_1_word_1", "container_1_count_3", "heron-shell-1"},
			argv: map[string]string{
				"container_1_count_3": "./heron-core/bin/heron-cpp-instance --topology_name=wc --topology_id=wc-abc --instance_id=container_1_count_3 --component_name=count --task_id=3 --component_index=0 --stmgr_id=stmgr-1 --stmgr_port=6005 --metricsmgr_port=6008 --config_file=./heron-conf/heron_internals.yaml --override_config_file=./heron-conf/override.yaml --topology_binary=/sb/wc.so",
			},
		},
		{
			name:  "shard not in the plan runs only heron-shell",
			shard: "3",
			names: []string{"heron-shell"},
			argv: map[string]string{
				"heron-shell": "./heron-core/bin/heron-shell --port=6007 --log_file_prefix=log-files/heron-shell-3.log --secret=wc-abc",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFlags(t, tt.shard, tt.extra...)
			rt := testRuntime()
			if tt.rt != nil {
				tt.rt(&rt)
			}
			ps, err := Processes(f, testPlan(), rt)
			if err != nil {
				t.Fatal(err)
			}
			names, m := argvMap(ps)
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("names = %v, want %v", names, tt.names)
			}
			for name, want := range tt.argv {
				if m[name] != want {
					t.Errorf("%s argv:\n got %s\nwant %s", name, m[name], want)
				}
			}
			for _, p := range ps {
				if p.Dir != "/sb" {
					t.Errorf("%s dir = %q, want /sb", p.Name, p.Dir)
				}
				if !contains(p.Env, "PEX_ROOT=/sb/.pex") || !contains(p.Env, "PATH=/bin") {
					t.Errorf("%s env = %v, want PEX_ROOT and the inherited PATH", p.Name, p.Env)
				}
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestProcessesEmptyPlanAndHeapCheck(t *testing.T) {
	f := mustFlags(t, "1")
	if ps, err := Processes(f, &Plan{}, testRuntime()); err != nil || len(ps) != 0 {
		t.Errorf("Processes(empty plan) = %v, %v; want nothing", ps, err)
	}
	rt := testRuntime()
	rt.HeapCheck = true
	ps, err := Processes(f, testPlan(), rt)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(ps[0].Env, "HEAPCHECK=normal") || !contains(ps[0].Env, "LD_PRELOAD=/usr/lib/libtcmalloc.so") {
		t.Errorf("stmgr env with ENABLE_HEAPCHECK = %v", ps[0].Env)
	}
	if contains(ps[1].Env, "HEAPCHECK=normal") {
		t.Errorf("metricsmgr got HEAPCHECK")
	}
	// A component missing from the RAM map is an error naming it.
	f = mustFlags(t, "1", "--component-ram-map=word:1073741824")
	if _, err := Processes(f, testPlan(), testRuntime()); err == nil || !strings.Contains(err.Error(), `"count"`) {
		t.Errorf("missing RAM entry error = %v", err)
	}
}

func TestDiff(t *testing.T) {
	f := mustFlags(t, "1")
	old, _ := Processes(f, testPlan(), testRuntime())
	current := map[string][]string{}
	for _, p := range old {
		current[p.Name] = p.Argv
	}
	// Scale: container 1 loses count_3 and gains word_5.
	plan := testPlan()
	plan.Containers[0].Instances = []InstancePlan{{"word", 1, 0}, {"word", 5, 2}}
	desired, _ := Processes(f, plan, testRuntime())
	c := Diff(current, desired)
	if want := []string{"container_1_word_1", "heron-shell-1", "metricsmgr-1"}; !reflect.DeepEqual(c.Keep, want) {
		t.Errorf("Keep = %v, want %v", c.Keep, want)
	}
	if want := []string{"container_1_count_3", "stmgr-1"}; !reflect.DeepEqual(c.Stop, want) {
		t.Errorf("Stop = %v, want %v", c.Stop, want)
	}
	var started []string
	for _, p := range c.Start {
		started = append(started, p.Name)
	}
	if want := []string{"stmgr-1", "container_1_word_5"}; !reflect.DeepEqual(started, want) {
		t.Errorf("Start = %v, want %v", started, want)
	}
	// An unchanged plan still restarts only the stream manager.
	c = Diff(current, old)
	if len(c.Stop) != 1 || c.Stop[0] != "stmgr-1" || len(c.Start) != 1 || c.Start[0].Name != "stmgr-1" {
		t.Errorf("Diff(same) = %+v, want only stmgr-1 restarted", c)
	}
}
