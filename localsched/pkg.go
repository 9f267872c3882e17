package localsched

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"egret/fetcher"
	"egret/heron/model"
	"egret/heron/packing"
	"egret/heron/topology"

	"google.golang.org/protobuf/proto"
)

// topoPackage is a topology package as submit sees it.
type topoPackage struct {
	Name    string
	topo    *model.Topology
	Archive string // topology.tar.gz
	li      launchInfo
}

// isSpec reports whether path names a topology spec rather than a package.
func isSpec(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yaml" || ext == ".yml"
}

// specName reads a spec's topology name (to load the cluster configuration,
// whose paths may hold ${TOPOLOGY}, before building the package).
func specName(path string) (*topology.Spec, error) {
	return topology.LoadSpec(path)
}

// buildPackage builds a spec into tmp/topology.tar.gz, with the cluster's
// configuration as its heron-conf/.
func buildPackage(spec *topology.Spec, tmp string, s settings) (string, error) {
	r, err := topology.Build(spec, tmp, s.cfg)
	if err != nil {
		return "", err
	}
	return r.Package, nil
}

// readPackage reads a topology.tar.gz (Heron-built or egret-built).
func readPackage(archive string) (*topoPackage, error) {
	pk, err := topology.ReadPackage(archive)
	if err != nil {
		return nil, err
	}
	p := &topoPackage{Archive: archive, topo: pk.Topology, Name: pk.Topology.GetName(),
		li: launchInfo{FormatVersion: 1, DefnFile: pk.DefnName, Binary: pk.Binary, PkgType: pk.PackageType, TopologyID: pk.Topology.GetId()}}
	if p.Name == "" || !validName(p.Name) {
		return nil, fmt.Errorf("topology package %s: bad topology name %q", archive, p.Name)
	}
	if p.li.TopologyID == "" {
		p.li.TopologyID = p.Name
	}
	p.li.Classpath = classpath(p.li.Binary, p.li.PkgType)
	return p, nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// classpath is the executor's --classpath for the binary, as Heron derives it.
func classpath(binary, typ string) string {
	if typ == "tar" {
		base := strings.TrimSuffix(strings.TrimSuffix(binary, ".gz"), ".tar")
		return "libs/*:" + base + ".jar"
	}
	return binary
}

// Topology is the definition written to the state tree: Heron's trimmed
// topology (no serialized objects), in its initial state.
func (p *topoPackage) Topology(deactivated bool) *model.Topology {
	t := proto.Clone(p.topo).(*model.Topology)
	for _, s := range t.GetSpouts() {
		if s.GetComp() != nil {
			s.GetComp().SerializedObject = nil
		}
	}
	for _, b := range t.GetBolts() {
		if b.GetComp() != nil {
			b.GetComp().SerializedObject = nil
		}
	}
	if deactivated {
		t.State = model.TopologyState_PAUSED.Enum()
	} else {
		t.State = model.TopologyState_RUNNING.Enum()
	}
	return t
}

func (s settings) executionState(p *topoPackage) *model.ExecutionState {
	u := "unknown"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	return &model.ExecutionState{
		TopologyName:   proto.String(p.Name),
		TopologyId:     proto.String(p.li.TopologyID),
		SubmissionTime: proto.Int64(time.Now().Unix()),
		SubmissionUser: proto.String(u),
		Cluster:        proto.String(s.Cluster),
		Environ:        proto.String(s.Environment),
		Role:           proto.String(s.Role),
		ReleaseState:   &model.HeronReleaseState{ReleaseUsername: proto.String(u), ReleaseTag: proto.String("egret"), ReleaseVersion: proto.String("egret")},
	}
}

func pack(s settings, p *topoPackage) (*model.PackingPlan, error) {
	params, err := packing.ParamsFromConfig(s.cfg)
	if err != nil {
		return nil, err
	}
	return packing.RoundRobin(p.topo, params)
}

func repack(s settings, topo *model.Topology, current *model.PackingPlan, parallelism map[string]int, containers int) (*model.PackingPlan, error) {
	if topo == nil {
		return nil, errors.New("the topology definition is missing from the state")
	}
	params, err := packing.ParamsFromConfig(s.cfg)
	if err != nil {
		return nil, err
	}
	return packing.Repack(topo, current, packing.Changes{Parallelism: parallelism, Containers: containers}, params)
}

// fetchCore puts the Heron core release into dir (heron-core/,
// release.yaml) through the fetcher's cache: a release already fetched once
// is hard-linked from the cache, not downloaded or extracted again.
func fetchCore(ctx context.Context, s settings, dir string, progress func(string, ...any)) error {
	cache, err := fetcher.DefaultCacheDir()
	if err != nil {
		return err
	}
	f := &fetcher.Fetcher{CacheDir: cache, Progress: func(p fetcher.Progress) {
		if p.Total > 0 && p.Done == p.Total {
			progress("%s %s: %d bytes", p.Step, p.URI, p.Total)
		}
	}}
	uri := s.CoreURI
	if filepath.IsAbs(uri) {
		uri = "file://" + uri
	}
	res, err := f.Fetch(ctx, fetcher.Request{URI: uri, Dest: dir, Extract: true, Cache: true})
	if err != nil {
		hint := ""
		if s.SimRelease {
			hint = " (the simulated release: run make sim-release, or set EGRET_SIM_RELEASE or heron.package.core.uri)"
		}
		return fmt.Errorf("the Heron core release %s: %w%s", s.CoreURI, err, hint)
	}
	if res.CacheHit {
		progress("the Heron core release %s came from the cache", s.CoreURI)
	}
	return nil
}
