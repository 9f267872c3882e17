package localsched

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// loadPackage reads a topology package (topology.tar.gz), or builds one from
// a spec (.yaml) into tmp first.
func loadPackage(ctx context.Context, path, tmp string) (*topoPackage, error) {
	archive := path
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		built, err := buildSpec(path, tmp)
		if err != nil {
			return nil, err
		}
		archive = built
	}
	return readPackage(archive)
}

// readPackage finds the .defn and the topology binary in a topology.tar.gz.
func readPackage(archive string) (*topoPackage, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("topology package %s: %w", archive, unwrapPath(err))
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("topology package %s: not a .tar.gz: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	p := &topoPackage{Archive: archive, li: launchInfo{FormatVersion: 1}}
	var files []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("topology package %s: %w", archive, err)
		}
		name := strings.TrimPrefix(filepath.Clean(h.Name), "./")
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") {
			continue
		}
		if strings.HasSuffix(name, ".defn") {
			if p.topo != nil {
				return nil, fmt.Errorf("topology package %s: more than one .defn", archive)
			}
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, fmt.Errorf("topology package %s: %w", archive, err)
			}
			t := &model.Topology{}
			if err := proto.Unmarshal(b, t); err != nil {
				return nil, fmt.Errorf("topology package %s: %s is not a Heron topology definition: %w", archive, name, err)
			}
			p.topo = t
			p.li.DefnFile = name
			continue
		}
		files = append(files, name)
	}
	if p.topo == nil {
		return nil, fmt.Errorf("topology package %s holds no <topology>.defn", archive)
	}
	p.Name = p.topo.GetName()
	if p.Name == "" || !validName(p.Name) {
		return nil, fmt.Errorf("topology package %s: bad topology name %q", archive, p.Name)
	}
	p.li.TopologyID = p.topo.GetId()
	if p.li.TopologyID == "" {
		p.li.TopologyID = p.Name
	}
	for _, f := range files {
		if t, ok := pkgType(f); ok {
			p.li.Binary, p.li.PkgType = f, t
			break
		}
	}
	if p.li.Binary == "" {
		return nil, fmt.Errorf("topology package %s holds no topology binary (.jar, .tar, .tar.gz, .pex, .so)", archive)
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

// pkgType is Heron's package type, from the binary's extension.
func pkgType(name string) (string, bool) {
	switch {
	case strings.HasSuffix(name, ".jar"):
		return "jar", true
	case strings.HasSuffix(name, ".tar"), strings.HasSuffix(name, ".tar.gz"):
		return "tar", true
	case strings.HasSuffix(name, ".pex"):
		return "pex", true
	case strings.HasSuffix(name, ".so"):
		return "so", true
	case strings.HasSuffix(name, ".dylib"):
		return "dylib", true
	}
	return "", false
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

// buildSpec builds a topology package from a spec.
func buildSpec(path, tmp string) (string, error) {
	spec, err := topology.LoadSpec(path)
	if err != nil {
		return "", err
	}
	// No heron-conf/ in the package: the sandbox gets the cluster's configuration.
	res, err := topology.Build(spec, tmp, nil)
	if err != nil {
		return "", err
	}
	return res.Package, nil
}
