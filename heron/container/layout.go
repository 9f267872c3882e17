package container

// PortCount is how many ports a container's executor takes: Heron's schedulers
// reserve the same nine for every container; their meaning depends on the shard
// (heron-reference section 1.7).
const PortCount = 9

// UseReleaseLayout sets the flags that name files of the core release and of the
// container's configuration to the paths Heron's schedulers pass, relative to
// the sandbox (heron-core.tar.gz's layout, heron-reference section 7). A
// scheduler fills in the topology, the state manager and the ports itself.
func (f *Flags) UseReleaseLayout() {
	const core, conf = "./heron-core/", "./heron-conf/"
	f.StateManagerConfigFile = conf + "statemgr.yaml"
	f.HeronInternalsConfigFile = conf + "heron_internals.yaml"
	f.OverrideConfigFile = conf + "override.yaml"
	f.MetricsSinksConfigFile = conf + "metrics_sinks.yaml"
	f.StatefulConfigFile = conf + "stateful.yaml"
	f.TManagerBinary = core + "bin/heron-tmanager"
	f.StmgrBinary = core + "bin/heron-stmgr"
	f.HeronShellBinary = core + "bin/heron-shell"
	f.PythonInstanceBinary = core + "bin/heron-python-instance"
	f.CppInstanceBinary = core + "bin/heron-cpp-instance"
	f.MetricsManagerClasspath = core + "lib/metricsmgr/*"
	f.InstanceClasspath = core + "lib/instance/*"
	f.SchedulerClasspath = core + "lib/scheduler/*:" + core + "lib/packing/*:" + core + "lib/statemgr/*"
	f.MetricsCacheManagerClasspath = core + "lib/metricscachemgr/*"
	f.CheckpointManagerClasspath = core + "lib/ckptmgr/*:" + core + "lib/statefulstorage/*:"
	f.HealthManagerClasspath = core + "lib/healthmgr/*"
}

// SetPorts assigns the container's ports by meaning, in the order Heron's
// schedulers list them: server, tmanager controller, tmanager stats, shell,
// metrics manager, scheduler, metrics cache server, metrics cache stats,
// checkpoint manager.
func (f *Flags) SetPorts(ports [PortCount]int) {
	f.ServerPort = ports[0]
	f.TManagerControllerPort = ports[1]
	f.TManagerStatsPort = ports[2]
	f.ShellPort = ports[3]
	f.MetricsManagerPort = ports[4]
	f.SchedulerPort = ports[5]
	f.MetricsCacheManagerServerPort = ports[6]
	f.MetricsCacheManagerStatsPort = ports[7]
	f.CheckpointManagerPort = ports[8]
}
