// Package topology describes a Heron topology without Java: a small YAML spec (name,
// components with parallelism, resources and config, streams, the topology binary and its
// package type) becomes Heron's <name>.defn (a serialized Topology) and a topology.tar.gz laid
// out as Heron's CLI lays it out. It also reads packages, Heron-built ones as they are.
package topology

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/heron/packing"
)

// Spec is a topology described in YAML (see docs/topology-spec.md).
type Spec struct {
	Name   string               `yaml:"name"`
	ID     string               `yaml:"id"`
	State  string               `yaml:"state"`
	Config map[string]yaml.Node `yaml:"config"`
	// Binary is the topology file, relative to the spec; none means an empty <name>.jar.
	Binary string `yaml:"binary"`
	// Type is jar, tar, pex, so or dylib; default from Binary's extension.
	Type      string         `yaml:"type"`
	Resources *Resources     `yaml:"resources"`
	Spouts    []ComponentDef `yaml:"spouts"`
	Bolts     []ComponentDef `yaml:"bolts"`

	file string // the spec's path, for messages and Binary
}

// Resources of a container or a component; RAM and disk in bytes or with a unit (512MB, 2GB).
type Resources struct {
	RAM  yaml.Node `yaml:"ram"`
	CPU  yaml.Node `yaml:"cpu"`
	Disk yaml.Node `yaml:"disk"`
}

// ComponentDef is one spout or bolt.
type ComponentDef struct {
	Name        string               `yaml:"name"`
	Parallelism yaml.Node            `yaml:"parallelism"`
	Class       string               `yaml:"class"`
	Config      map[string]yaml.Node `yaml:"config"`
	Resources   *Resources           `yaml:"resources"`
	Inputs      []Input              `yaml:"inputs"`
	Outputs     []Output             `yaml:"outputs"`

	line int
}

// Input subscribes a bolt to a stream.
type Input struct {
	Component string   `yaml:"component"`
	Stream    string   `yaml:"stream"`
	Grouping  string   `yaml:"grouping"`
	Fields    []string `yaml:"fields"`
}

// Output declares a stream and its fields.
type Output struct {
	Stream string   `yaml:"stream"`
	Fields []string `yaml:"fields"`
}

// SpecError lists every problem of a spec.
type SpecError struct {
	File     string
	Problems []string
}

func (e *SpecError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("topology spec %s", e.Problems[0])
	}
	return fmt.Sprintf("topology spec %s: %d problems:\n  %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	unitRE  = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$`)
	yamlLn  = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): `)
	pkgExts = []struct{ ext, typ string }{{".jar", "jar"}, {".tar.gz", "tar"}, {".tar", "tar"}, {".pex", "pex"}, {".so", "so"}, {".dylib", "dylib"}}
)

// PackageType is Heron's package type for a topology file name, from its extension.
func PackageType(file string) (string, bool) {
	for _, p := range pkgExts {
		if strings.HasSuffix(file, p.ext) {
			return p.typ, true
		}
	}
	return "", false
}

// LoadSpec reads and checks a spec; every problem is reported at once, each with the file,
// the line where known, and the field.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology spec %s: %w", path, errors.Unwrap(err))
	}
	return ParseSpec(path, data)
}

// ParseSpec is LoadSpec on bytes already read; path names them in messages.
func ParseSpec(path string, data []byte) (*Spec, error) {
	fail := func(msg string) error { return &SpecError{File: path, Problems: []string{path + ": " + msg}} }
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail("is empty")
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		msg := err.Error()
		if m := yamlLn.FindStringSubmatch(msg); m != nil {
			return nil, &SpecError{File: path, Problems: []string{fmt.Sprintf("%s:%s: line %s: %s", path, m[1], m[1], strings.TrimPrefix(msg, m[0]))}}
		}
		return nil, fail("invalid YAML: " + strings.TrimPrefix(msg, "yaml: "))
	}
	// Lines of the components, for messages.
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			list := root.Content[i+1]
			var defs []ComponentDef
			switch root.Content[i].Value {
			case "spouts":
				defs = s.Spouts
			case "bolts":
				defs = s.Bolts
			default:
				continue
			}
			for j, n := range list.Content {
				if j < len(defs) {
					defs[j].line = n.Line
				}
			}
		}
	}
	s.file = path
	if probs := s.check(); len(probs) > 0 {
		return nil, &SpecError{File: path, Problems: probs}
	}
	return &s, nil
}

func (s *Spec) at(line int, field, msg string) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", s.file, line, field, msg)
	}
	return fmt.Sprintf("%s: %s: %s", s.file, field, msg)
}

func (s *Spec) check() []string {
	var probs []string
	add := func(line int, field, msg string) { probs = append(probs, s.at(line, field, msg)) }
	if s.Name == "" {
		add(0, "name", "missing")
	} else if !nameRE.MatchString(s.Name) {
		add(0, "name", fmt.Sprintf("%q may only hold letters, digits, '.', '_' and '-'", s.Name))
	}
	if s.ID != "" && !nameRE.MatchString(s.ID) {
		add(0, "id", fmt.Sprintf("%q may only hold letters, digits, '.', '_' and '-'", s.ID))
	}
	switch strings.ToUpper(s.State) {
	case "", "RUNNING", "PAUSED":
	default:
		add(0, "state", fmt.Sprintf("%q is not RUNNING or PAUSED", s.State))
	}
	if s.Type != "" {
		switch s.Type {
		case "jar", "tar", "pex", "so", "dylib":
		default:
			add(0, "type", fmt.Sprintf("%q is not one of jar, tar, pex, so, dylib", s.Type))
		}
	}
	if s.Binary != "" && s.Type == "" {
		if _, ok := PackageType(s.Binary); !ok {
			add(0, "binary", fmt.Sprintf("%q: cannot tell its package type from the extension; set type", s.Binary))
		}
	}
	if s.Binary != "" {
		if st, err := os.Stat(s.binaryPath()); err != nil || !st.Mode().IsRegular() {
			add(0, "binary", fmt.Sprintf("%s is not a readable file", s.binaryPath()))
		}
	}
	for k, v := range s.Config {
		if v.Kind != yaml.ScalarNode {
			add(v.Line, "config."+k, "must be a single value")
		}
	}
	if n, ok := s.Config[packing.KeyStmgrs]; ok {
		if v, err := strconv.Atoi(n.Value); err != nil || v < 1 {
			add(n.Line, "config."+packing.KeyStmgrs, fmt.Sprintf("%q is not a positive integer", n.Value))
		}
	}
	if s.Resources != nil {
		probs = append(probs, s.checkResources(s.Resources, "resources")...)
	}
	if len(s.Spouts) == 0 {
		add(0, "spouts", "a topology needs at least one spout")
	}
	seen := map[string]string{}
	streams := map[string]bool{}
	each := func(kind string, defs []ComponentDef, fn func(field string, c *ComponentDef)) {
		for i := range defs {
			fn(fmt.Sprintf("%s[%d]", kind, i), &defs[i])
		}
	}
	checkComp := func(field string, c *ComponentDef) {
		if c.Name == "" {
			add(c.line, field+".name", "missing")
		} else if !nameRE.MatchString(c.Name) {
			add(c.line, field+".name", fmt.Sprintf("%q may only hold letters, digits, '.', '_' and '-'", c.Name))
		} else if prev, dup := seen[c.Name]; dup {
			add(c.line, field+".name", fmt.Sprintf("duplicate component %q (also %s)", c.Name, prev))
		} else {
			seen[c.Name] = field
		}
		if _, err := c.parallelism(); err != nil {
			add(max(c.Parallelism.Line, c.line), field+".parallelism", err.Error())
		}
		if c.Resources != nil {
			probs = append(probs, s.checkResources(c.Resources, field+".resources")...)
		}
		outs := map[string]bool{}
		for j, o := range c.Outputs {
			id := o.Stream
			if id == "" {
				id = "default"
			}
			if outs[id] {
				add(c.line, fmt.Sprintf("%s.outputs[%d]", field, j), fmt.Sprintf("duplicate stream %q", id))
			}
			outs[id] = true
			streams[c.Name+"/"+id] = true
		}
	}
	each("spouts", s.Spouts, func(f string, c *ComponentDef) {
		checkComp(f, c)
		if len(c.Inputs) > 0 {
			add(c.line, f+".inputs", "a spout has no inputs")
		}
	})
	each("bolts", s.Bolts, checkComp)
	each("bolts", s.Bolts, func(f string, c *ComponentDef) {
		if len(c.Inputs) == 0 {
			add(c.line, f+".inputs", "a bolt needs at least one input")
		}
		for j, in := range c.Inputs {
			field := fmt.Sprintf("%s.inputs[%d]", f, j)
			stream := in.Stream
			if stream == "" {
				stream = "default"
			}
			if _, ok := seen[in.Component]; !ok {
				add(c.line, field+".component", fmt.Sprintf("unknown component %q", in.Component))
			} else if !streams[in.Component+"/"+stream] {
				add(c.line, field+".stream", fmt.Sprintf("component %q declares no stream %q", in.Component, stream))
			}
			g, ok := groupings[strings.ToLower(in.Grouping)]
			if !ok {
				add(c.line, field+".grouping", fmt.Sprintf("%q is not one of shuffle, fields, all, lowest, none, direct", in.Grouping))
			}
			if g == model.Grouping_FIELDS && len(in.Fields) == 0 {
				add(c.line, field+".fields", "fields grouping needs fields")
			}
		}
	})
	if len(probs) == 0 {
		// Packing catches what only the whole topology shows (more containers than
		// instances, a RAM map naming no component, resources that do not fit).
		t, err := s.topology("check")
		if err == nil {
			_, err = packing.RoundRobin(t, packing.DefaultParams())
		}
		if err != nil {
			probs = append(probs, s.at(0, "config", strings.TrimPrefix(err.Error(), "packing: ")))
		}
	}
	sort.SliceStable(probs, func(i, j int) bool { return lineOf(probs[i]) < lineOf(probs[j]) })
	return probs
}

func lineOf(p string) int {
	parts := strings.SplitN(p, ":", 3)
	if len(parts) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(parts[1])
	return n
}

var groupings = map[string]model.Grouping{
	"": model.Grouping_SHUFFLE, "shuffle": model.Grouping_SHUFFLE, "fields": model.Grouping_FIELDS,
	"all": model.Grouping_ALL, "lowest": model.Grouping_LOWEST, "none": model.Grouping_NONE, "direct": model.Grouping_DIRECT,
}

func (c *ComponentDef) parallelism() (int, error) {
	if c.Parallelism.Kind == 0 {
		return 0, errors.New("missing")
	}
	n, err := strconv.Atoi(c.Parallelism.Value)
	if c.Parallelism.Kind != yaml.ScalarNode || err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive integer", c.Parallelism.Value)
	}
	return n, nil
}

func (s *Spec) checkResources(r *Resources, field string) []string {
	var probs []string
	if r.RAM.Kind != 0 {
		if _, err := bytesOf(r.RAM.Value); err != nil {
			probs = append(probs, s.at(r.RAM.Line, field+".ram", err.Error()))
		}
	}
	if r.Disk.Kind != 0 {
		if _, err := bytesOf(r.Disk.Value); err != nil {
			probs = append(probs, s.at(r.Disk.Line, field+".disk", err.Error()))
		}
	}
	if r.CPU.Kind != 0 {
		if v, err := strconv.ParseFloat(r.CPU.Value, 64); err != nil || v <= 0 {
			probs = append(probs, s.at(r.CPU.Line, field+".cpu", fmt.Sprintf("%q is not a positive number", r.CPU.Value)))
		}
	}
	return probs
}

// bytesOf reads 1073741824, 512MB, 2GB, 1.5GiB (powers of 1024, as Heron's ByteAmount).
func bytesOf(s string) (int64, error) {
	m := unitRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KB, MB, GB, TB)", s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	mult := map[byte]float64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
	if m[2] != "" && m[2] != "B" {
		v *= mult[m[2][0]]
	}
	if v < 1 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return int64(v), nil
}

func (s *Spec) binaryPath() string {
	if filepath.IsAbs(s.Binary) {
		return s.Binary
	}
	return filepath.Join(filepath.Dir(s.file), s.Binary)
}

// BinaryName is the topology file's name inside the package.
func (s *Spec) BinaryName() string {
	if s.Binary == "" {
		return s.Name + ".jar"
	}
	return filepath.Base(s.Binary)
}

// PackageType is the spec's package type.
func (s *Spec) PackageType() string {
	if s.Type != "" {
		return s.Type
	}
	t, _ := PackageType(s.BinaryName())
	return t
}

// Topology builds Heron's Topology message; the id is <name><random hex> unless the spec sets it.
func (s *Spec) Topology() (*model.Topology, error) {
	id := s.ID
	if id == "" {
		b := make([]byte, 16)
		rand.Read(b)
		id = s.Name + hex.EncodeToString(b)
	}
	return s.topology(id)
}

func kv(k, v string) *model.Config_KeyValue {
	return &model.Config_KeyValue{Key: proto.String(k), Value: proto.String(v), Type: model.ConfigValueType_STRING_VALUE.Enum()}
}

func (s *Spec) topology(id string) (*model.Topology, error) {
	state := model.TopologyState_RUNNING
	if strings.EqualFold(s.State, "PAUSED") {
		state = model.TopologyState_PAUSED
	}
	t := &model.Topology{Id: proto.String(id), Name: proto.String(s.Name), State: state.Enum(), TopologyConfig: &model.Config{}}
	cfg := map[string]string{}
	for k, v := range s.Config {
		cfg[k] = v.Value
	}
	if r := s.Resources; r != nil {
		if r.RAM.Kind != 0 {
			n, _ := bytesOf(r.RAM.Value)
			cfg[packing.KeyContainerRAM] = strconv.FormatInt(n, 10)
		}
		if r.Disk.Kind != 0 {
			n, _ := bytesOf(r.Disk.Value)
			cfg[packing.KeyContainerDisk] = strconv.FormatInt(n, 10)
		}
		if r.CPU.Kind != 0 {
			cfg[packing.KeyContainerCPU] = r.CPU.Value
		}
	}
	var rams, cpus []string
	for _, list := range [][]ComponentDef{s.Spouts, s.Bolts} {
		for _, c := range list {
			if c.Resources == nil {
				continue
			}
			if c.Resources.RAM.Kind != 0 {
				n, _ := bytesOf(c.Resources.RAM.Value)
				rams = append(rams, fmt.Sprintf("%s:%d", c.Name, n))
			}
			if c.Resources.CPU.Kind != 0 {
				cpus = append(cpus, c.Name+":"+c.Resources.CPU.Value)
			}
		}
	}
	// Per-component resources join any map the config already gives.
	if len(rams) > 0 {
		cfg[packing.KeyComponentRAMMap] = joinMap(cfg[packing.KeyComponentRAMMap], rams)
	}
	if len(cpus) > 0 {
		cfg[packing.KeyComponentCPUMap] = joinMap(cfg[packing.KeyComponentCPUMap], cpus)
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.TopologyConfig.Kvs = append(t.TopologyConfig.Kvs, kv(k, cfg[k]))
	}
	comp := func(c ComponentDef) *model.Component {
		n, _ := c.parallelism()
		class := c.Class
		if class == "" {
			class = c.Name
		}
		mc := &model.Component{Name: proto.String(c.Name), ClassName: proto.String(class),
			Spec: model.ComponentObjectSpec_JAVA_CLASS_NAME.Enum(), Config: &model.Config{}}
		ck := make([]string, 0, len(c.Config))
		for k := range c.Config {
			ck = append(ck, k)
		}
		sort.Strings(ck)
		for _, k := range ck {
			if k != packing.KeyParallelism {
				mc.Config.Kvs = append(mc.Config.Kvs, kv(k, c.Config[k].Value))
			}
		}
		mc.Config.Kvs = append(mc.Config.Kvs, kv(packing.KeyParallelism, strconv.Itoa(n)))
		return mc
	}
	outputs := func(c ComponentDef) []*model.OutputStream {
		var out []*model.OutputStream
		for _, o := range c.Outputs {
			id := o.Stream
			if id == "" {
				id = "default"
			}
			schema := &model.StreamSchema{}
			for _, f := range o.Fields {
				schema.Keys = append(schema.Keys, &model.StreamSchema_KeyType{Key: proto.String(f), Type: model.Type_OBJECT.Enum()})
			}
			out = append(out, &model.OutputStream{Stream: &model.StreamId{Id: proto.String(id), ComponentName: proto.String(c.Name)}, Schema: schema})
		}
		return out
	}
	for _, c := range s.Spouts {
		t.Spouts = append(t.Spouts, &model.Spout{Comp: comp(c), Outputs: outputs(c)})
	}
	for _, c := range s.Bolts {
		b := &model.Bolt{Comp: comp(c), Outputs: outputs(c)}
		for _, in := range c.Inputs {
			stream := in.Stream
			if stream == "" {
				stream = "default"
			}
			g := groupings[strings.ToLower(in.Grouping)]
			is := &model.InputStream{Stream: &model.StreamId{Id: proto.String(stream), ComponentName: proto.String(in.Component)}, Gtype: g.Enum()}
			if g == model.Grouping_FIELDS {
				is.GroupingFields = &model.StreamSchema{}
				for _, f := range in.Fields {
					is.GroupingFields.Keys = append(is.GroupingFields.Keys, &model.StreamSchema_KeyType{Key: proto.String(f), Type: model.Type_OBJECT.Enum()})
				}
			}
			b.Inputs = append(b.Inputs, is)
		}
		t.Bolts = append(t.Bolts, b)
	}
	return t, nil
}

func joinMap(existing string, add []string) string {
	if existing == "" {
		return strings.Join(add, ",")
	}
	return existing + "," + strings.Join(add, ",")
}
