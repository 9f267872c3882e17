package topology

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
	"egret/heron/packing"
)

const wordcount = `name: wordcount
config:
  topology.stmgrs: 2
  topology.message.timeout.secs: 30
resources:
  cpu: 4
spouts:
  - name: sentence
    parallelism: 2
    class: example.SentenceSpout
    resources:
      ram: 512MB
    outputs:
      - stream: default
        fields: [sentence]
bolts:
  - name: split
    parallelism: 2
    config:
      topology.tick.tuple.freq.secs: 5
    inputs:
      - component: sentence
        grouping: shuffle
    outputs:
      - fields: [word]
  - name: count
    parallelism: 3
    inputs:
      - component: split
        stream: default
        grouping: fields
        fields: [word]
`

func writeSpec(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func cfgValue(c *model.Config, key string) string {
	for _, kv := range c.GetKvs() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return ""
}

func TestBuildAndRead(t *testing.T) {
	spec, err := LoadSpec(writeSpec(t, wordcount))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{Cluster: "local", Topology: spec.Name, Properties: []string{"heron.x=true"}})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Build(spec, out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Defn != filepath.Join(out, "wordcount.defn") || res.Package != filepath.Join(out, "topology.tar.gz") {
		t.Errorf("Build wrote %s and %s", res.Defn, res.Package)
	}
	pkg, err := ReadPackage(res.Package)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Binary != "wordcount.jar" || pkg.PackageType != "jar" || pkg.DefnName != "wordcount.defn" || pkg.Meta == nil {
		t.Errorf("package: binary %q type %q defn %q meta %v", pkg.Binary, pkg.PackageType, pkg.DefnName, pkg.Meta)
	}
	for _, f := range []string{"statemgr.yaml", "heron_internals.yaml", "metrics_sinks.yaml", "override.yaml", "release.yaml"} {
		found := false
		for _, c := range pkg.ConfFiles {
			found = found || c == f
		}
		if !found {
			t.Errorf("heron-conf/%s missing (have %v)", f, pkg.ConfFiles)
		}
	}
	defn, _ := os.ReadFile(res.Defn)
	var fromFile model.Topology
	if err := proto.Unmarshal(defn, &fromFile); err != nil || !proto.Equal(&fromFile, pkg.Topology) {
		t.Errorf("the .defn beside the package differs from the one inside: %v", err)
	}
	top := pkg.Topology
	if top.GetName() != "wordcount" || !strings.HasPrefix(top.GetId(), "wordcount") || len(top.GetId()) != len("wordcount")+32 {
		t.Errorf("name %q id %q", top.GetName(), top.GetId())
	}
	if top.GetState() != model.TopologyState_RUNNING || len(top.GetSpouts()) != 1 || len(top.GetBolts()) != 2 {
		t.Fatalf("topology %v", top)
	}
	tc := top.GetTopologyConfig()
	for k, want := range map[string]string{
		packing.KeyStmgrs:               "2",
		packing.KeyContainerCPU:         "4",
		packing.KeyComponentRAMMap:      "sentence:536870912",
		"topology.message.timeout.secs": "30",
	} {
		if got := cfgValue(tc, k); got != want {
			t.Errorf("topology config %s = %q, want %q", k, got, want)
		}
	}
	sp := top.GetSpouts()[0]
	if sp.GetComp().GetClassName() != "example.SentenceSpout" || cfgValue(sp.GetComp().GetConfig(), packing.KeyParallelism) != "2" ||
		sp.GetOutputs()[0].GetSchema().GetKeys()[0].GetKey() != "sentence" {
		t.Errorf("spout %v", sp)
	}
	split, count := top.GetBolts()[0], top.GetBolts()[1]
	if cfgValue(split.GetComp().GetConfig(), "topology.tick.tuple.freq.secs") != "5" || split.GetInputs()[0].GetGtype() != model.Grouping_SHUFFLE ||
		split.GetInputs()[0].GetStream().GetId() != "default" || split.GetOutputs()[0].GetStream().GetId() != "default" {
		t.Errorf("split %v", split)
	}
	in := count.GetInputs()[0]
	if in.GetGtype() != model.Grouping_FIELDS || in.GetGroupingFields().GetKeys()[0].GetKey() != "word" || in.GetStream().GetComponentName() != "split" {
		t.Errorf("count input %v", in)
	}
	plan, err := packing.RoundRobin(top, packing.DefaultParams())
	if err != nil || len(plan.GetContainerPlans()) != 2 {
		t.Errorf("packing the built topology: %v, %v", plan, err)
	}
	// heron-conf loads back in cluster mode.
	dir := t.TempDir()
	extract(t, res.Package, dir)
	back, err := config.Load(config.Options{ConfDir: filepath.Join(dir, "heron-conf")})
	if err != nil || back.String("heron.x") != "true" || back.String("heron.class.scheduler") == "" {
		t.Errorf("heron-conf reloaded: %v, heron.x=%q", err, back.String("heron.x"))
	}
}

func extract(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := new(bytes.Buffer)
		b.ReadFrom(tr)
		os.WriteFile(p, b.Bytes(), 0o644)
	}
}

func TestBinaryAndType(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "my-topology.tar.gz"), []byte("not really a tar"), 0o644)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte("name: t\nbinary: my-topology.tar.gz\nspouts:\n  - name: s\n    parallelism: 1\n"), 0o644)
	spec, err := LoadSpec(filepath.Join(dir, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(spec, filepath.Join(dir, "out"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := ReadPackage(res.Package)
	if err != nil || pkg.Binary != "my-topology.tar.gz" || pkg.PackageType != "tar" || len(pkg.ConfFiles) != 0 {
		t.Errorf("package %+v, %v", pkg, err)
	}
}

func TestMalformedSpecs(t *testing.T) {
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"empty", "", []string{"spec.yaml: is empty"}},
		{"yaml syntax", "name: x\nspouts: [unclosed\n", []string{"spec.yaml:", "line"}},
		{"a list", "- name: x\n", []string{"spec.yaml", "cannot unmarshal"}},
		{"unknown field", "name: x\nboltz: []\nspouts:\n  - name: s\n    parallelism: 1\n", []string{"spec.yaml:2", "boltz"}},
		{"no name", "spouts:\n  - name: s\n    parallelism: 1\n", []string{"spec.yaml: name: missing"}},
		{"bad name", "name: word count/../x\nspouts:\n  - name: s\n    parallelism: 1\n", []string{`name: "word count/../x" may only hold`}},
		{"no spouts", "name: x\n", []string{"spouts: a topology needs at least one spout"}},
		{"text parallelism", "name: x\nspouts:\n  - name: s\n    parallelism: many\n", []string{`spec.yaml:4: spouts[0].parallelism: "many" is not a positive integer`}},
		{"zero parallelism", "name: x\nspouts:\n  - name: s\n    parallelism: 0\n", []string{`spouts[0].parallelism: "0" is not a positive integer`}},
		{"missing parallelism", "name: x\nspouts:\n  - name: s\n", []string{`spec.yaml:3: spouts[0].parallelism: missing`}},
		{"duplicate", "name: x\nspouts:\n  - name: s\n    parallelism: 1\n    outputs: [{stream: default}]\nbolts:\n  - name: s\n    parallelism: 1\n    inputs: [{component: s}]\n",
			[]string{`spec.yaml:7: bolts[0].name: duplicate component "s" (also spouts[0])`}},
		{"unknown input", "name: x\nspouts:\n  - name: s\n    parallelism: 1\nbolts:\n  - name: b\n    parallelism: 1\n    inputs: [{component: nosuchcomponent}]\n",
			[]string{`bolts[0].inputs[0].component: unknown component "nosuchcomponent"`}},
		{"undeclared stream", "name: x\nspouts:\n  - name: s\n    parallelism: 1\nbolts:\n  - name: b\n    parallelism: 1\n    inputs: [{component: s}]\n",
			[]string{`component "s" declares no stream "default"`}},
		{"bad grouping", "name: x\nspouts:\n  - name: s\n    parallelism: 1\n    outputs: [{}]\nbolts:\n  - name: b\n    parallelism: 1\n    inputs: [{component: s, grouping: random}]\n",
			[]string{`grouping: "random" is not one of`}},
		{"bad stmgrs", "name: x\nconfig:\n  topology.stmgrs: three\nspouts:\n  - name: s\n    parallelism: 1\n", []string{`spec.yaml:3: config.topology.stmgrs: "three" is not a positive integer`}},
		{"too many containers", "name: x\nconfig:\n  topology.stmgrs: 4\nspouts:\n  - name: s\n    parallelism: 1\n", []string{"config: more containers (4) than instances (1)"}},
		{"bad ram", "name: x\nspouts:\n  - name: s\n    parallelism: 1\n    resources: {ram: lots}\n", []string{`spouts[0].resources.ram: "lots" is not a size`}},
		{"missing binary", "name: x\nbinary: gone.jar\nspouts:\n  - name: s\n    parallelism: 1\n", []string{"binary:", "gone.jar is not a readable file"}},
		{"unknown type", "name: x\ntype: war\nspouts:\n  - name: s\n    parallelism: 1\n", []string{`type: "war" is not one of jar, tar, pex, so, dylib`}},
		{"all at once", "name: x\nspouts:\n  - name: s\n    parallelism: 0\n  - name: s\n    parallelism: -1\n", []string{"3 problems", "spouts[0].parallelism", "spouts[1].parallelism", "duplicate component"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadSpec(writeSpec(t, c.spec))
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("LoadSpec = %v, want a *SpecError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func tarGz(t *testing.T, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := writeTarGz(&buf, files); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "topology.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func TestReadPackage(t *testing.T) {
	topo := &model.Topology{Id: proto.String("wc1"), Name: proto.String("wc"), State: model.TopologyState_RUNNING.Enum()}
	defn, _ := proto.Marshal(topo)
	// As Heron's CLI builds it: no egret file.
	heron := tarGz(t, map[string][]byte{"wc.defn": defn, "my-topology.jar": []byte("PK"), "heron-conf/statemgr.yaml": []byte("a: 1\n")})
	p, err := ReadPackage(heron)
	if err != nil || p.Binary != "my-topology.jar" || p.Meta != nil || !proto.Equal(p.Topology, topo) {
		t.Errorf("Heron-built package: %+v, %v", p, err)
	}
	cases := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"newer format", map[string][]byte{"wc.defn": defn, "wc.jar": nil, MetaFile: []byte(`{"format_version": 7}`)},
			"egret-package.json has format_version 7; this egret reads format_version 1 or older"},
		{"no defn", map[string][]byte{"wc.jar": nil}, "holds no <topology>.defn"},
		{"bad defn", map[string][]byte{"wc.defn": []byte("\xff\xff\xff"), "wc.jar": nil}, "wc.defn is not a Heron topology definition"},
		{"misnamed defn", map[string][]byte{"other.defn": defn, "wc.jar": nil}, `other.defn defines topology "wc" (Heron looks for wc.defn)`},
		{"no binary", map[string][]byte{"wc.defn": defn}, "holds no topology binary"},
	}
	for _, c := range cases {
		if _, err := ReadPackage(tarGz(t, c.files)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	garbage := filepath.Join(t.TempDir(), "topology.tar.gz")
	os.WriteFile(garbage, []byte("garbage"), 0o644)
	if _, err := ReadPackage(garbage); err == nil || !strings.Contains(err.Error(), "not a .tar.gz") {
		t.Errorf("garbage: %v", err)
	}
}

func TestFailedBuildLeavesNothing(t *testing.T) {
	spec, err := LoadSpec(writeSpec(t, wordcount))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.Mkdir(filepath.Join(out, "topology.tar.gz"), 0o755) // the package cannot replace a directory
	if _, err := Build(spec, out, nil); err == nil {
		t.Fatal("Build over a directory succeeded")
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left behind: %v", names)
	}
}
