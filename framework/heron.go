package framework

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"egret/executor"
	"egret/heron/container"
	"egret/heron/model"
)

// PortCount is how many ports a container's executor takes, in the order
// container.Flags.SetPorts assigns them.
const PortCount = container.PortCount

// Package says where the topology package is and what it holds.
type Package struct {
	URI      string `json:"uri"`
	Checksum string `json:"checksum,omitempty"`
	// Binary is the topology file at the package's root (a jar, tar, pex or
	// shared object); PkgType is Heron's name for its kind.
	Binary  string `json:"binary"`
	PkgType string `json:"pkg_type"`
}

// PkgType is Heron's package type of a topology file, from its name.
func PkgType(binary string) (string, error) {
	b := strings.ToLower(binary)
	switch {
	case strings.HasSuffix(b, ".jar"):
		return "jar", nil
	case strings.HasSuffix(b, ".tar"), strings.HasSuffix(b, ".tar.gz"):
		return "tar", nil
	case strings.HasSuffix(b, ".pex"):
		return "pex", nil
	case strings.HasSuffix(b, ".so"):
		return "so", nil
	case strings.HasSuffix(b, ".dylib"):
		return "dylib", nil
	}
	return "", fmt.Errorf("topology file %q: want a .jar, .tar, .tar.gz, .pex, .so or .dylib", binary)
}

// Needs are the resources of each container of a packing plan. Container 0
// (the topology manager) is not in the plan; it gets the largest container's
// share, as Heron's Mesos scheduler gives every container.
func Needs(plan *model.PackingPlan) map[int]Need {
	needs := map[int]Need{}
	var max Need
	for _, cp := range plan.GetContainerPlans() {
		r := cp.GetScheduledResource()
		if r == nil {
			r = cp.GetRequiredResource()
		}
		n := Need{CPUs: r.GetCpu(), MemMB: mb(r.GetRam()), DiskMB: mb(r.GetDisk()), Ports: PortCount}
		needs[int(cp.GetId())] = n
		if n.CPUs > max.CPUs {
			max.CPUs = n.CPUs
		}
		if n.MemMB > max.MemMB {
			max.MemMB = n.MemMB
		}
		if n.DiskMB > max.DiskMB {
			max.DiskMB = n.DiskMB
		}
	}
	if max.CPUs == 0 {
		max = Need{CPUs: 1, MemMB: 1024, DiskMB: 1024}
	}
	max.Ports = PortCount
	needs[0] = max
	return needs
}

func mb(bytes int64) float64 { return float64((bytes + (1<<20 - 1)) >> 20) }

// ContainerInputs are what every container's executor flags are made of.
type ContainerInputs struct {
	Topology                   *model.Topology
	Plan                       *model.PackingPlan
	Cluster, Role, Environment string
	StateConnection, StateRoot string
	JavaHome                   string
	Package                    Package
	MetricsCacheMode           string // heron.topology.metricscachemgr.mode
	HealthManagerMode          string // heron.topology.healthmgr.mode
}

// topologyConfig reads a key of the topology's own configuration.
func topologyConfig(t *model.Topology, key string) string {
	for _, kv := range t.GetTopologyConfig().GetKvs() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return ""
}

// componentRAM is the smallest RAM each component has in the plan, as
// Heron's scheduler computes --component-ram-map.
func componentRAM(plan *model.PackingPlan) map[string]int64 {
	m := map[string]int64{}
	for _, cp := range plan.GetContainerPlans() {
		for _, ip := range cp.GetInstancePlans() {
			ram := ip.GetResource().GetRam()
			if old, ok := m[ip.GetComponentName()]; !ok || ram < old {
				m[ip.GetComponentName()] = ram
			}
		}
	}
	return m
}

// ExecutorFlags is the heron-executor command line of one container, as
// Heron's scheduler builds it in cluster mode (paths relative to the
// sandbox, where heron-core/ and the topology package are extracted).
func ExecutorFlags(in ContainerInputs, shard int, ports []uint32) ([]string, error) {
	if len(ports) < PortCount {
		return nil, fmt.Errorf("container %d has %d ports, needs %d", shard, len(ports), PortCount)
	}
	t := in.Topology
	name := t.GetName()
	classpath := in.Package.Binary
	if in.Package.PkgType == "tar" {
		base := strings.TrimSuffix(strings.TrimSuffix(path.Base(in.Package.Binary), ".gz"), ".tar")
		classpath = "libs/*:" + base + ".jar"
	}
	if extra := topologyConfig(t, "topology.additional.classpath"); extra != "" {
		classpath += ":" + extra
	}
	ckptRAM := int64(1 << 30)
	if v := topologyConfig(t, "topology.stateful.checkpointmanager.ram"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("topology.stateful.checkpointmanager.ram %q: %w", v, err)
		}
		ckptRAM = n
	}
	mode := func(v string) string {
		if v == "" {
			return "disabled"
		}
		return v
	}
	f := &container.Flags{
		Shard:                   shard,
		TopologyName:            name,
		TopologyID:              t.GetId(),
		TopologyDefnFile:        name + ".defn",
		StateManagerConnection:  in.StateConnection,
		StateManagerRoot:        in.StateRoot,
		InstanceJVMOpts:         topologyConfig(t, "topology.worker.childopts"),
		Classpath:               classpath,
		ComponentRAMMap:         componentRAM(in.Plan),
		ComponentJVMOpts:        map[string]string{},
		PkgType:                 in.Package.PkgType,
		TopologyBinaryFile:      in.Package.Binary,
		HeronJavaHome:           in.JavaHome,
		Cluster:                 in.Cluster,
		Role:                    in.Role,
		Environment:             in.Environment,
		MetricsCacheManagerMode: mode(in.MetricsCacheMode),
		IsStateful:              topologyConfig(t, "topology.reliability.mode") == "EFFECTIVELY_ONCE",
		CheckpointManagerRAM:    ckptRAM,
		HealthManagerMode:       mode(in.HealthManagerMode),
		RestartBudget:           container.DefaultRestartBudget,
		BackoffMin:              container.DefaultBackoffMin,
		BackoffMax:              container.DefaultBackoffMax,
		StopGrace:               container.DefaultStopGrace,
	}
	f.UseReleaseLayout()
	var byMeaning [container.PortCount]int
	for i := range byMeaning {
		byMeaning[i] = int(ports[i])
	}
	f.SetPorts(byMeaning)
	args := f.Args()
	if _, err := container.ParseFlags(args); err != nil {
		return nil, fmt.Errorf("container %d: executor flags: %w", shard, err)
	}
	return args, nil
}

// TaskData is a container's task data: its executor flags and the two
// artifacts its executor fetches (the Heron release and the topology package).
func TaskData(in ContainerInputs, coreURI, coreChecksum string, c Container) ([]byte, error) {
	flags, err := ExecutorFlags(in, c.Index, c.Ports)
	if err != nil {
		return nil, err
	}
	td := executor.TaskData{
		Topology: in.Topology.GetName(), TopologyID: in.Topology.GetId(), Shard: c.Index, ExecutorFlags: flags,
		URIs: []executor.TaskURI{
			{URI: coreURI, Checksum: coreChecksum, Extract: true, Cache: true},
			{URI: in.Package.URI, Checksum: in.Package.Checksum, Extract: true, Cache: true},
		},
	}
	return td.Marshal()
}

// sortedIndexes lists a needs map's containers in order.
func sortedIndexes(needs map[int]Need) []int {
	var ix []int
	for i := range needs {
		ix = append(ix, i)
	}
	sort.Ints(ix)
	return ix
}
