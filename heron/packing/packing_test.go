package packing

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
)

const (
	G = int64(1) << 30
	M = int64(1) << 20
)

type comp struct {
	name  string
	par   int
	spout bool
}

func topology(cfg map[string]string, comps ...comp) *model.Topology {
	t := &model.Topology{Id: proto.String("t-id"), Name: proto.String("t"), State: model.TopologyState_RUNNING.Enum(),
		TopologyConfig: &model.Config{}}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.TopologyConfig.Kvs = append(t.TopologyConfig.Kvs, &model.Config_KeyValue{Key: proto.String(k), Value: proto.String(cfg[k])})
	}
	for _, c := range comps {
		mc := &model.Component{Name: proto.String(c.name), Config: &model.Config{Kvs: []*model.Config_KeyValue{
			{Key: proto.String(KeyParallelism), Value: proto.String(fmt.Sprint(c.par))}}}}
		if c.spout {
			t.Spouts = append(t.Spouts, &model.Spout{Comp: mc})
		} else {
			t.Bolts = append(t.Bolts, &model.Bolt{Comp: mc})
		}
	}
	return t
}

// render writes a plan one container a line, instances by task id:
// "c<id> ram=<bytes> cpu=<cpu> disk=<bytes>: <component>/<task>/<index> <ram> <cpu> <disk>, ..."
func render(p *model.PackingPlan) string {
	var lines []string
	cs := append([]*model.ContainerPlan(nil), p.GetContainerPlans()...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].GetId() < cs[j].GetId() })
	for _, c := range cs {
		is := append([]*model.InstancePlan(nil), c.GetInstancePlans()...)
		sort.Slice(is, func(i, j int) bool { return is[i].GetTaskId() < is[j].GetTaskId() })
		var parts []string
		for _, i := range is {
			r := i.GetResource()
			parts = append(parts, fmt.Sprintf("%s/%d/%d %d %g %d", i.GetComponentName(), i.GetTaskId(), i.GetComponentIndex(), r.GetRam(), r.GetCpu(), r.GetDisk()))
		}
		r := c.GetRequiredResource()
		lines = append(lines, fmt.Sprintf("c%d ram=%d cpu=%g disk=%d: %s", c.GetId(), r.GetRam(), r.GetCpu(), r.GetDisk(), strings.Join(parts, ", ")))
	}
	return strings.Join(lines, "\n")
}

func line(id int, ram int64, cpu float64, disk int64, insts ...string) string {
	return fmt.Sprintf("c%d ram=%d cpu=%g disk=%d: %s", id, ram, cpu, disk, strings.Join(insts, ", "))
}

func inst(c string, task, index int, ram int64, cpu float64) string {
	return fmt.Sprintf("%s/%d/%d %d %g %d", c, task, index, ram, cpu, G)
}

// The expected plans are worked out by hand from Heron's RoundRobinPacking: components in
// the iteration order of Java's HashMap (String hash buckets: exclaim1 9, word 13; split 3,
// spout 8, count 8; a 1, b 2), stably sorted by requested RAM, largest first; instances dealt
// to containers 1..N in turn with global task ids from 1; RAM and CPU of a container's
// instances without a requested amount split evenly from the container's (hinted or default)
// amount minus padding (RAM: stmgr + metricsmgr [+ ckptmgr] = 2 GiB by default; CPU: 1);
// default container RAM = instance RAM x largest container + padding, CPU = round(instance CPU
// x largest + 1), disk = instance disk x largest + 12 GiB.
func TestRoundRobinGolden(t *testing.T) {
	wordcount := []comp{{"word", 3, true}, {"exclaim1", 2, false}}
	cases := []struct {
		name string
		topo *model.Topology
		want []string
	}{
		{"defaults, uneven containers", topology(map[string]string{KeyStmgrs: "2"}, wordcount...), []string{
			line(1, 5*G, 4, 15*G, inst("exclaim1", 1, 0, G, 1), inst("word", 3, 0, G, 1), inst("word", 5, 2, G, 1)),
			line(2, 5*G, 4, 15*G, inst("exclaim1", 2, 1, 3*G/2, 1.5), inst("word", 4, 1, 3*G/2, 1.5)),
		}},
		{"component RAM map", topology(map[string]string{KeyStmgrs: "2", KeyComponentRAMMap: "exclaim1:536870912"}, wordcount...), []string{
			line(1, 5*G, 4, 15*G, inst("exclaim1", 1, 0, 512*M, 1), inst("word", 3, 0, 5*G/4, 1), inst("word", 5, 2, 5*G/4, 1)),
			line(2, 5*G, 4, 15*G, inst("exclaim1", 2, 1, 512*M, 1.5), inst("word", 4, 1, 5*G/2, 1.5)),
		}},
		{"RAM map puts the biggest first", topology(map[string]string{KeyStmgrs: "2", KeyComponentRAMMap: "word:536870912"}, wordcount...), []string{
			line(1, 5*G, 4, 15*G, inst("word", 1, 0, 512*M, 1), inst("word", 3, 2, 512*M, 1), inst("exclaim1", 5, 1, 2*G, 1)),
			line(2, 5*G, 4, 15*G, inst("word", 2, 1, 512*M, 1.5), inst("exclaim1", 4, 0, 5*G/2, 1.5)),
		}},
		{"container hints", topology(map[string]string{KeyStmgrs: "3", KeyContainerRAM: fmt.Sprint(4 * G), KeyContainerCPU: "3", KeyContainerDisk: fmt.Sprint(10 * G)},
			comp{"spout", 2, true}, comp{"split", 2, false}, comp{"count", 2, false}), []string{
			line(1, 4*G, 3, 10*G, inst("split", 1, 0, G, 1), inst("spout", 4, 1, G, 1)),
			line(2, 4*G, 3, 10*G, inst("split", 2, 1, G, 1), inst("count", 5, 0, G, 1)),
			line(3, 4*G, 3, 10*G, inst("spout", 3, 0, G, 1), inst("count", 6, 1, G, 1)),
		}},
		{"RAM padding set", topology(map[string]string{KeyContainerRAMPadding: fmt.Sprint(G)}, comp{"a", 2, true}, comp{"b", 1, false}), []string{
			line(1, 4*G, 4, 15*G, inst("a", 1, 0, G, 1), inst("a", 2, 1, G, 1), inst("b", 3, 0, G, 1)),
		}},
		{"stateful adds the checkpoint manager to the padding", topology(map[string]string{KeyReliabilityMode: "EFFECTIVELY_ONCE"}, comp{"a", 1, true}), []string{
			line(1, 4*G, 2, 13*G, inst("a", 1, 0, G, 1)),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := RoundRobin(c.topo, Params{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := render(p), strings.Join(c.want, "\n"); got != want {
				t.Errorf("plan\n%s\nwant\n%s", got, want)
			}
			if p.GetId() != "t-id" {
				t.Errorf("plan id %q, want the topology id", p.GetId())
			}
			if _, err := proto.Marshal(p); err != nil {
				t.Errorf("plan does not encode (required fields): %v", err)
			}
		})
	}
}

func TestRepackGolden(t *testing.T) {
	topo := topology(map[string]string{KeyStmgrs: "2"}, comp{"word", 3, true}, comp{"exclaim1", 2, false})
	cur, err := RoundRobin(topo, Params{})
	if err != nil {
		t.Fatal(err)
	}
	// 7 instances at the initial 2.5 per container: ceil(7/2.5) = 3 containers.
	p, err := Repack(topo, cur, Changes{Parallelism: map[string]int{"word": 5}}, Params{})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		line(1, 5*G, 4, 15*G, inst("exclaim1", 1, 0, G, 1), inst("word", 4, 1, G, 1), inst("word", 7, 4, G, 1)),
		line(2, 5*G, 4, 15*G, inst("exclaim1", 2, 1, 3*G/2, 1.5), inst("word", 5, 2, 3*G/2, 1.5)),
		line(3, 5*G, 4, 15*G, inst("word", 3, 0, 3*G/2, 1.5), inst("word", 6, 3, 3*G/2, 1.5)),
	}, "\n")
	if got := render(p); got != want {
		t.Errorf("repack(word=5)\n%s\nwant\n%s", got, want)
	}
	// An explicit container count.
	p, err = Repack(topo, cur, Changes{Parallelism: map[string]int{"word": 5}, Containers: 1}, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.GetContainerPlans()[0].GetRequiredResource(); len(p.GetContainerPlans()) != 1 || r.GetRam() != 9*G || r.GetCpu() != 8 || r.GetDisk() != 19*G {
		t.Errorf("repack to 1 container:\n%s", render(p))
	}
	// Fewer instances shrink the container count.
	p, err = Repack(topo, cur, Changes{Parallelism: map[string]int{"word": 1, "exclaim1": 1}}, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.GetContainerPlans()); n != 1 {
		t.Errorf("repack to 2 instances: %d containers, want ceil(2/2.5) = 1", n)
	}
}

func TestPackingErrors(t *testing.T) {
	wc := []comp{{"word", 3, true}, {"exclaim1", 2, false}}
	cases := []struct {
		name string
		topo *model.Topology
		want string
	}{
		{"more containers than instances", topology(map[string]string{KeyStmgrs: "6"}, wc...), "more containers (6) than instances (5)"},
		{"no containers", topology(map[string]string{KeyStmgrs: "0"}, wc...), "invalid number of containers: 0"},
		{"bad stmgrs", topology(map[string]string{KeyStmgrs: "two"}, wc...), `topology.stmgrs: "two" is not an integer`},
		{"unknown component in RAM map", topology(map[string]string{KeyComponentRAMMap: "nope:1"}, wc...), `names unknown component "nope"`},
		{"malformed RAM map", topology(map[string]string{KeyComponentRAMMap: "word=1"}, wc...), "malformed topology.component.rammap entry"},
		{"instances exceed the container", topology(map[string]string{KeyContainerRAM: fmt.Sprint(2 * G), KeyComponentRAMMap: fmt.Sprintf("word:%d", G)}, wc...),
			"the instances' RAM (3221225472) exceeds the container's 2147483648"},
		{"nothing left for the others", topology(map[string]string{KeyContainerRAM: fmt.Sprint(3 * G), KeyComponentRAMMap: fmt.Sprintf("word:%d", G)}, wc...),
			"not enough RAM left for the instances without a requested amount"},
		{"below the minimum RAM", topology(map[string]string{KeyContainerRAM: fmt.Sprint(2*G + 10*M)}, wc...), "less than the minimum 16777216"},
		{"no parallelism", &model.Topology{Id: proto.String("x"), Name: proto.String("x"), Spouts: []*model.Spout{{Comp: &model.Component{Name: proto.String("s"), Config: &model.Config{}}}}},
			`component "s": topology.component.parallelism is not set`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := RoundRobin(c.topo, Params{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("RoundRobin error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	topo := topology(map[string]string{KeyStmgrs: "2"}, wc...)
	cur, _ := RoundRobin(topo, Params{})
	if _, err := Repack(topo, cur, Changes{Parallelism: map[string]int{"ghost": 2}}, Params{}); err == nil || !strings.Contains(err.Error(), `component "ghost" is not in the current plan`) {
		t.Errorf("Repack(unknown component) = %v", err)
	}
}

func TestJavaHashMapOrder(t *testing.T) {
	// Java: "word".hashCode() = 3655434, "exclaim1".hashCode() = 1993464296.
	if h := javaStringHash("word"); h != 3655434 {
		t.Errorf(`hash("word") = %d`, h)
	}
	if h := javaStringHash("exclaim1"); h != 1993464296 {
		t.Errorf(`hash("exclaim1") = %d`, h)
	}
	got := javaHashMapOrder([]component{{"spout", 1}, {"split", 1}, {"count", 1}})
	if got[0].name != "split" || got[1].name != "spout" || got[2].name != "count" {
		t.Errorf("order = %v, want split, spout, count", got)
	}
}
