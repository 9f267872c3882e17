// Package packing places a topology's instances into containers with the semantics of
// Heron's RoundRobinPacking: instances spread one by one over topology.stmgrs containers
// (ids from 1), the components with the most RAM first; each instance's and container's RAM,
// CPU and disk derived from the per-component maps, the instance defaults and the container
// padding. It also repacks a plan for new parallelism or a new container count.
package packing

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
)

// Topology config keys (Heron's org.apache.heron.api.Config).
const (
	KeyStmgrs              = "topology.stmgrs"
	KeyParallelism         = "topology.component.parallelism"
	KeyComponentRAMMap     = "topology.component.rammap"
	KeyComponentCPUMap     = "topology.component.cpumap"
	KeyContainerCPU        = "topology.container.cpu"
	KeyContainerRAM        = "topology.container.ram"
	KeyContainerDisk       = "topology.container.disk"
	KeyContainerRAMPadding = "topology.container.ram.padding"
	KeyStmgrRAM            = "topology.stmgr.ram"
	KeyMetricsmgrRAM       = "topology.metricsmgr.ram"
	KeyCkptmgrRAM          = "topology.stateful.checkpointmanager.ram"
	KeyReliabilityMode     = "topology.reliability.mode"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20

	daemonRAMPadding = 1 * gib // per stmgr, metrics manager and (stateful) checkpoint manager
	cpuPadding       = 1.0
	diskPadding      = 12 * gib
	minInstanceRAM   = 16 * mib
	notSpecified     = -1
)

// Params are the cluster's instance defaults (heron.resources.instance.*).
type Params struct {
	InstanceRAM  int64   // bytes; default 1 GiB
	InstanceCPU  float64 // default 1.0
	InstanceDisk int64   // bytes; default 1 GiB
}

// DefaultParams are Heron's defaults.
func DefaultParams() Params {
	return Params{InstanceRAM: gib, InstanceCPU: 1.0, InstanceDisk: gib}
}

// ParamsFromConfig reads heron.resources.instance.{ram,cpu,disk}.
func ParamsFromConfig(cfg *config.Config) (Params, error) {
	p := DefaultParams()
	var err error
	if p.InstanceRAM, err = cfg.Int("heron.resources.instance.ram", p.InstanceRAM); err != nil {
		return p, err
	}
	if p.InstanceCPU, err = cfg.Float("heron.resources.instance.cpu", p.InstanceCPU); err != nil {
		return p, err
	}
	if p.InstanceDisk, err = cfg.Int("heron.resources.instance.disk", p.InstanceDisk); err != nil {
		return p, err
	}
	return p, nil
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.InstanceRAM <= 0 {
		p.InstanceRAM = d.InstanceRAM
	}
	if p.InstanceCPU <= 0 {
		p.InstanceCPU = d.InstanceCPU
	}
	if p.InstanceDisk <= 0 {
		p.InstanceDisk = d.InstanceDisk
	}
	return p
}

// Changes ask Repack for a new plan.
type Changes struct {
	// Parallelism is the new parallelism of the components that change (absolute numbers).
	Parallelism map[string]int
	// Containers is the new container count; 0 keeps Heron's rule of keeping the number of
	// instances per container no larger than the topology's initial ratio.
	Containers int
}

// component is one component in the order Heron would iterate it.
type component struct {
	name        string
	parallelism int
}

type topoInfo struct {
	components []component // spouts then bolts
	cfg        map[string]string
	ramMap     map[string]int64
	cpuMap     map[string]float64
}

// Components returns each component's parallelism (topology.component.parallelism).
func Components(t *model.Topology) (map[string]int, error) {
	ti, err := inspect(t)
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, c := range ti.components {
		m[c.name] = c.parallelism
	}
	return m, nil
}

// ConfigValue returns a topology-level config value (string kvs only).
func ConfigValue(t *model.Topology, key string) (string, bool) {
	for _, kv := range t.GetTopologyConfig().GetKvs() {
		if kv.GetKey() == key && kv.Value != nil {
			return kv.GetValue(), true
		}
	}
	return "", false
}

func inspect(t *model.Topology) (*topoInfo, error) {
	if t == nil {
		return nil, fmt.Errorf("packing: no topology")
	}
	ti := &topoInfo{cfg: map[string]string{}}
	for _, kv := range t.GetTopologyConfig().GetKvs() {
		if kv.Value != nil {
			ti.cfg[kv.GetKey()] = kv.GetValue()
		}
	}
	add := func(c *model.Component) error {
		var par string
		found := false
		for _, kv := range c.GetConfig().GetKvs() {
			if kv.GetKey() == KeyParallelism {
				par, found = kv.GetValue(), true
			}
		}
		if !found {
			return fmt.Errorf("packing: component %q: %s is not set", c.GetName(), KeyParallelism)
		}
		n, err := strconv.Atoi(strings.TrimSpace(par))
		if err != nil || n < 1 {
			return fmt.Errorf("packing: component %q: %s %q is not a positive integer", c.GetName(), KeyParallelism, par)
		}
		for _, x := range ti.components {
			if x.name == c.GetName() {
				return fmt.Errorf("packing: component %q appears twice", c.GetName())
			}
		}
		ti.components = append(ti.components, component{c.GetName(), n})
		return nil
	}
	for _, s := range t.GetSpouts() {
		if err := add(s.GetComp()); err != nil {
			return nil, err
		}
	}
	for _, b := range t.GetBolts() {
		if err := add(b.GetComp()); err != nil {
			return nil, err
		}
	}
	if len(ti.components) == 0 {
		return nil, fmt.Errorf("packing: topology %q has no components", t.GetName())
	}
	var err error
	if ti.ramMap, err = componentMap(ti, KeyComponentRAMMap, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return nil, err
	}
	if ti.cpuMap, err = componentMap(ti, KeyComponentCPUMap, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return nil, err
	}
	return ti, nil
}

// componentMap parses "comp:value,comp:value" (Heron's TopologyUtils.getComponentConfigMap).
func componentMap[T any](ti *topoInfo, key string, parse func(string) (T, error)) (map[string]T, error) {
	out := map[string]T{}
	s, ok := ti.cfg[key]
	if !ok {
		return out, nil
	}
	known := map[string]bool{}
	for _, c := range ti.components {
		known[c.name] = true
	}
	for _, tok := range strings.Split(s, ",") {
		if strings.TrimSpace(tok) == "" {
			continue
		}
		parts := strings.Split(tok, ":")
		if len(parts) != 2 {
			return nil, fmt.Errorf("packing: malformed %s entry %q (want component:value)", key, tok)
		}
		if !known[parts[0]] {
			return nil, fmt.Errorf("packing: %s names unknown component %q", key, parts[0])
		}
		v, err := parse(strings.TrimSpace(parts[1]))
		if err != nil {
			return nil, fmt.Errorf("packing: %s: component %q: bad value %q", key, parts[0], parts[1])
		}
		out[parts[0]] = v
	}
	return out, nil
}

func (ti *topoInfo) intCfg(key string, def int64) (int64, error) {
	s, ok := ti.cfg[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("packing: topology config %s: %q is not an integer", key, s)
	}
	return n, nil
}

func (ti *topoInfo) floatCfg(key string, def float64) (float64, error) {
	s, ok := ti.cfg[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("packing: topology config %s: %q is not a number", key, s)
	}
	return n, nil
}

// ramPadding is topology.container.ram.padding, else the RAM of the container's daemons.
func (ti *topoInfo) ramPadding() (int64, error) {
	stmgr, err := ti.intCfg(KeyStmgrRAM, daemonRAMPadding)
	if err != nil {
		return 0, err
	}
	metrics, err := ti.intCfg(KeyMetricsmgrRAM, daemonRAMPadding)
	if err != nil {
		return 0, err
	}
	ckptDefault := int64(0)
	if ti.cfg[KeyReliabilityMode] == "EFFECTIVELY_ONCE" {
		ckptDefault = daemonRAMPadding
	}
	ckpt, err := ti.intCfg(KeyCkptmgrRAM, ckptDefault)
	if err != nil {
		return 0, err
	}
	return ti.intCfg(KeyContainerRAMPadding, stmgr+metrics+ckpt)
}

// RoundRobin packs a topology over topology.stmgrs containers (default 1).
func RoundRobin(t *model.Topology, p Params) (*model.PackingPlan, error) {
	ti, err := inspect(t)
	if err != nil {
		return nil, err
	}
	n, err := ti.intCfg(KeyStmgrs, 1)
	if err != nil {
		return nil, err
	}
	return pack(t.GetId(), ti, int(n), ti.components, p.withDefaults())
}

// Repack computes a new plan from the current one for changed parallelism and/or container
// count, as Heron's RoundRobinPacking.repack does.
func Repack(t *model.Topology, current *model.PackingPlan, ch Changes, p Params) (*model.PackingPlan, error) {
	ti, err := inspect(t)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	var order []string
	for _, c := range current.GetContainerPlans() {
		for _, ip := range c.GetInstancePlans() {
			if _, ok := counts[ip.GetComponentName()]; !ok {
				order = append(order, ip.GetComponentName())
			}
			counts[ip.GetComponentName()]++
		}
	}
	for name, n := range ch.Parallelism {
		if _, ok := counts[name]; !ok {
			return nil, fmt.Errorf("packing: repack: component %q is not in the current plan", name)
		}
		if n < 1 {
			return nil, fmt.Errorf("packing: repack: component %q: parallelism %d must be at least 1", name, n)
		}
		counts[name] = n
	}
	// Iterate in the topology's order where known.
	var comps []component
	seen := map[string]bool{}
	for _, c := range ti.components {
		if n, ok := counts[c.name]; ok {
			comps = append(comps, component{c.name, n})
			seen[c.name] = true
		}
	}
	for _, name := range order {
		if !seen[name] {
			comps = append(comps, component{name, counts[name]})
		}
	}
	containers := ch.Containers
	if containers == 0 || containers == len(current.GetContainerPlans()) {
		initContainers, err := ti.intCfg(KeyStmgrs, 1)
		if err != nil {
			return nil, err
		}
		initTotal := 0
		for _, c := range ti.components {
			initTotal += c.parallelism
		}
		ratio := float64(initTotal) / float64(initContainers)
		containers = int(math.Ceil(float64(total(comps)) / ratio))
	}
	return pack(current.GetId(), ti, containers, comps, p.withDefaults())
}

func total(comps []component) int {
	n := 0
	for _, c := range comps {
		n += c.parallelism
	}
	return n
}

type instanceID struct {
	component string
	taskID    int32
	index     int32
}

// allocate deals instances to containers 1..n, the components with the most RAM first.
func allocate(n int, comps []component, ramMap map[string]int64) (map[int][]instanceID, error) {
	tot := total(comps)
	if n < 1 {
		return nil, fmt.Errorf("packing: invalid number of containers: %d", n)
	}
	if n > tot {
		return nil, fmt.Errorf("packing: more containers (%d) than instances (%d)", n, tot)
	}
	order := javaHashMapOrder(comps)
	// Heron sorts by requested RAM, largest first; a stable sort keeps the map order on ties.
	sort.SliceStable(order, func(i, j int) bool { return ramMap[order[i].name] > ramMap[order[j].name] })
	alloc := map[int][]instanceID{}
	for i := 1; i <= n; i++ {
		alloc[i] = nil
	}
	idx, task := 1, int32(1)
	for _, c := range order {
		for i := 0; i < c.parallelism; i++ {
			alloc[idx] = append(alloc[idx], instanceID{c.name, task, int32(i)})
			if idx == n {
				idx = 1
			} else {
				idx++
			}
			task++
		}
	}
	return alloc, nil
}

// javaHashMapOrder returns the components in the order Heron's Java HashMap (filled in the
// given order) iterates them: by bucket of the spread String hash, then insertion order.
func javaHashMapOrder(comps []component) []component {
	capacity := 16
	for float64(len(comps)) > 0.75*float64(capacity) {
		capacity *= 2
	}
	type keyed struct {
		c      component
		bucket int
		pos    int
	}
	ks := make([]keyed, len(comps))
	for i, c := range comps {
		h := javaStringHash(c.name)
		h ^= int32(uint32(h) >> 16)
		ks[i] = keyed{c, int(h) & (capacity - 1), i}
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].bucket < ks[j].bucket })
	out := make([]component, len(ks))
	for i, k := range ks {
		out[i] = k.c
	}
	return out
}

func javaStringHash(s string) int32 {
	var h int32
	for _, r := range utf16(s) {
		h = 31*h + int32(r)
	}
	return h
}

func utf16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}

func pack(id string, ti *topoInfo, n int, comps []component, p Params) (*model.PackingPlan, error) {
	alloc, err := allocate(n, comps, ti.ramMap)
	if err != nil {
		return nil, err
	}
	largest := 0
	for _, l := range alloc {
		largest = max(largest, len(l))
	}
	pad, err := ti.ramPadding()
	if err != nil {
		return nil, err
	}
	hintCPU, err := ti.floatCfg(KeyContainerCPU, notSpecified)
	if err != nil {
		return nil, err
	}
	hintRAM, err := ti.intCfg(KeyContainerRAM, notSpecified)
	if err != nil {
		return nil, err
	}
	hintDisk, err := ti.intCfg(KeyContainerDisk, notSpecified)
	if err != nil {
		return nil, err
	}
	ramDefault := p.InstanceRAM*int64(largest) + pad
	cpuDefault := float64(float32(math.Floor(p.InstanceCPU*float64(largest) + cpuPadding + 0.5)))

	plan := &model.PackingPlan{Id: proto.String(id)}
	ids := make([]int, 0, len(alloc))
	for cid := range alloc {
		ids = append(ids, cid)
	}
	sort.Ints(ids)
	for _, cid := range ids {
		insts := alloc[cid]
		rams, err := share(cid, insts, ti.ramMap, hintRAM, ramDefault, pad, "RAM",
			func(v int64, k int) int64 { return int64(math.Round(float64(v) / float64(k))) })
		if err != nil {
			return nil, err
		}
		cpus, err := share(cid, insts, ti.cpuMap, hintCPU, cpuDefault, cpuPadding, "CPU",
			func(v float64, k int) float64 { return v / float64(k) })
		if err != nil {
			return nil, err
		}
		cp := &model.ContainerPlan{Id: proto.Int32(int32(cid))}
		var ram int64
		var cpu float64
		for i, in := range insts {
			if rams[i] < minInstanceRAM {
				return nil, fmt.Errorf("packing: instance of %q would get %d bytes of RAM, less than the minimum %d", in.component, rams[i], minInstanceRAM)
			}
			cp.InstancePlans = append(cp.InstancePlans, &model.InstancePlan{
				ComponentName:  proto.String(in.component),
				TaskId:         proto.Int32(in.taskID),
				ComponentIndex: proto.Int32(in.index),
				Resource:       resource(cpus[i], rams[i], p.InstanceDisk),
			})
			ram += rams[i]
			cpu += cpus[i]
		}
		cpu += cpuPadding
		if hintCPU != notSpecified {
			cpu = math.Min(cpu, hintCPU)
		}
		ram += pad
		if hintRAM != notSpecified {
			ram = min(ram, hintRAM)
		}
		disk := hintDisk
		if disk == notSpecified {
			disk = p.InstanceDisk*int64(largest) + diskPadding
		}
		cp.RequiredResource = resource(math.Max(cpu, hintCPU), ram, disk)
		plan.ContainerPlans = append(plan.ContainerPlans, cp)
	}
	return plan, nil
}

func resource(cpu float64, ram, disk int64) *model.Resource {
	return &model.Resource{Cpu: proto.Float64(cpu), Ram: proto.Int64(ram), Disk: proto.Int64(disk)}
}

// share gives each instance of a container its amount of one resource (Heron's
// calculateInstancesResourceMapInContainer): the component's requested amount where the map
// has one, the rest of the container split evenly among the others.
func share[T int64 | float64](cid int, insts []instanceID, req map[string]T, hint, containerDefault, padding T,
	what string, divide func(T, int) T) ([]T, error) {
	out := make([]T, len(insts))
	var used T
	var unspecified []int
	for i, in := range insts {
		if v, ok := req[in.component]; ok {
			out[i] = v
			used += v
		} else {
			unspecified = append(unspecified, i)
		}
	}
	throttled := false
	if hint != notSpecified && used > hint-padding {
		if used > hint {
			return nil, fmt.Errorf("packing: container %d: the instances' %s (%v) exceeds the container's %v", cid, what, used, hint)
		}
		throttled = true
	}
	containerRes := hint
	if hint == notSpecified {
		containerRes = containerDefault
	}
	if len(unspecified) > 0 {
		remaining := containerRes - padding - used
		if throttled {
			remaining = containerRes - used
		}
		if remaining <= 0 {
			return nil, fmt.Errorf("packing: container %d: not enough %s left for the instances without a requested amount", cid, what)
		}
		each := divide(remaining, len(unspecified))
		for _, i := range unspecified {
			out[i] = each
		}
	}
	return out, nil
}
