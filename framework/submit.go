package framework

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"egret/heron/model"
	"egret/heron/packing"
	"egret/heron/statemgr"

	"google.golang.org/protobuf/proto"
)

// PackageInfo is what a topology package (topology.tar.gz) holds at its root.
type PackageInfo struct {
	Topology *model.Topology
	Binary   string // the topology file
	PkgType  string
}

// ReadPackage reads a topology package's definition and finds its topology
// file; errors name the package and what is missing.
func ReadPackage(path string) (*PackageInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("topology package: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("topology package %s: not a gzip archive: %w", path, err)
	}
	tr := tar.NewReader(gz)
	info := &PackageInfo{}
	var defns, binaries []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("topology package %s: %w", path, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if strings.Contains(name, "/") || h.Typeflag != tar.TypeReg {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".defn"):
			defns = append(defns, name)
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, fmt.Errorf("topology package %s: %s: %w", path, name, err)
			}
			t := &model.Topology{}
			if err := proto.Unmarshal(b, t); err != nil {
				return nil, fmt.Errorf("topology package %s: %s is not a Heron topology definition: %w", path, name, err)
			}
			info.Topology = t
		default:
			if _, err := PkgType(name); err == nil {
				binaries = append(binaries, name)
			}
		}
	}
	if len(defns) != 1 {
		return nil, fmt.Errorf("topology package %s: want one <topology>.defn at its root, found %d %v", path, len(defns), defns)
	}
	if want := info.Topology.GetName() + ".defn"; defns[0] != want {
		return nil, fmt.Errorf("topology package %s: %s defines topology %q (want %s)", path, defns[0], info.Topology.GetName(), want)
	}
	if len(binaries) != 1 {
		return nil, fmt.Errorf("topology package %s: want one topology file (.jar, .tar, .pex, .so) at its root, found %v", path, binaries)
	}
	info.Binary = binaries[0]
	info.PkgType, _ = PkgType(info.Binary)
	return info, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// trimmed is the topology as Heron stores it: components' serialized
// objects cleared.
func trimmed(t *model.Topology) *model.Topology {
	t = proto.Clone(t).(*model.Topology)
	for _, s := range t.GetSpouts() {
		if s.GetComp() != nil {
			s.Comp.SerializedObject = nil
		}
	}
	for _, b := range t.GetBolts() {
		if b.GetComp() != nil {
			b.Comp.SerializedObject = nil
		}
	}
	return t
}

// Submit uploads the package (Heron's local-FS uploader: a copy under
// heron.uploader.localfs.file.system.directory, fetched by the agents as a
// file:// URI), writes the topology's state and starts its scheduler. A
// master that does not answer in time leaves nothing behind.
func (c *Client) Submit(ctx context.Context, pkg string, deployDeactivated bool) error {
	if !strings.HasSuffix(pkg, ".tar.gz") && !strings.HasSuffix(pkg, ".tgz") {
		return fmt.Errorf("submit %s: a mesos cluster takes a topology package (topology.tar.gz; build one with `egret topology build`)", pkg)
	}
	info, err := ReadPackage(pkg)
	if err != nil {
		return err
	}
	name := info.Topology.GetName()
	s, err := c.open(ctx, name)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	params, err := packing.ParamsFromConfig(s.cfg)
	if err != nil {
		return err
	}
	plan, err := packing.RoundRobin(info.Topology, params)
	if err != nil {
		return fmt.Errorf("pack %q: %w", name, err)
	}
	if c.opts.DryRun {
		return c.printPlan(plan)
	}
	if _, err := s.sm.Get(ctx, statemgr.Topologies, name); err == nil {
		return fmt.Errorf("topology %q already exists: kill it first", name)
	} else if !errors.Is(err, statemgr.ErrNotFound) {
		return err
	}
	// Upload.
	dir := s.cfg.String("heron.uploader.localfs.file.system.directory")
	if dir == "" {
		return errors.New("heron.uploader.localfs.file.system.directory is not set: the agents fetch the topology package from there")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("upload %s: %w", pkg, err)
	}
	dest := filepath.Join(dir, "topology.tar.gz")
	if err := copyFile(pkg, dest); err != nil {
		return fmt.Errorf("upload %s: %w", pkg, err)
	}
	sum, err := sha256File(dest)
	if err != nil {
		return err
	}
	// State, rolled back on any failure from here on.
	ok := false
	defer func() {
		if !ok {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.sm.Delete(cctx, statemgr.Frameworks, name)
			_ = statemgr.CleanTopology(cctx, s.sm, name)
			_ = os.Remove(dest)
		}
	}()
	t := trimmed(info.Topology)
	if deployDeactivated {
		t.State = model.TopologyState_PAUSED.Enum()
	} else {
		t.State = model.TopologyState_RUNNING.Enum()
	}
	if err := statemgr.SetTopology(ctx, s.sm, t); err != nil {
		return fmt.Errorf("write topology %q: %w", name, err)
	}
	if err := statemgr.SetPackingPlan(ctx, s.sm, name, plan); err != nil {
		return fmt.Errorf("write packing plan of %q: %w", name, err)
	}
	submitter := "egret"
	if u, err := user.Current(); err == nil {
		submitter = u.Username
	}
	es := &model.ExecutionState{TopologyName: proto.String(name), TopologyId: proto.String(t.GetId()),
		SubmissionTime: proto.Int64(time.Now().Unix()), SubmissionUser: proto.String(submitter),
		Cluster: proto.String(c.opts.Cluster), Environ: proto.String(c.opts.Environment), Role: proto.String(c.opts.Role)}
	if err := statemgr.SetExecutionState(ctx, s.sm, es); err != nil {
		return fmt.Errorf("write execution state of %q: %w", name, err)
	}
	rec := Record{Package: &Package{URI: "file://" + dest, Checksum: sum, Binary: info.Binary, PkgType: info.PkgType}}
	b, err := EncodeRecord(rec)
	if err != nil {
		return err
	}
	if err := s.sm.Set(ctx, statemgr.Frameworks, name, b); err != nil {
		return fmt.Errorf("write framework record of %q: %w", name, err)
	}
	if err := c.startFramework(ctx, s, name); err != nil {
		return fmt.Errorf("submit %q: %w", name, err)
	}
	ok = true
	fmt.Fprintf(c.opts.Err, "topology %s submitted to mesos: %d containers\n", name, len(plan.GetContainerPlans())+1)
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

func (c *Client) printPlan(plan *model.PackingPlan) error {
	needs := Needs(plan)
	if c.opts.DryRunFormat == "json" {
		enc := json.NewEncoder(c.opts.Out)
		enc.SetIndent("", "  ")
		type row struct {
			Container int      `json:"container"`
			CPUs      float64  `json:"cpus"`
			MemMB     float64  `json:"mem_mb"`
			DiskMB    float64  `json:"disk_mb"`
			Ports     int      `json:"ports"`
			Instances []string `json:"instances,omitempty"`
		}
		var rows []row
		for _, i := range sortedIndexes(needs) {
			n := needs[i]
			rows = append(rows, row{i, n.CPUs, n.MemMB, n.DiskMB, n.Ports, instances(plan, i)})
		}
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(c.opts.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tCPUS\tMEM(MB)\tDISK(MB)\tPORTS\tINSTANCES")
	for _, i := range sortedIndexes(needs) {
		n := needs[i]
		fmt.Fprintf(tw, "%d\t%g\t%g\t%g\t%d\t%s\n", i, n.CPUs, n.MemMB, n.DiskMB, n.Ports, strings.Join(instances(plan, i), " "))
	}
	return tw.Flush()
}

func instances(plan *model.PackingPlan, id int) []string {
	var out []string
	for _, cp := range plan.GetContainerPlans() {
		if int(cp.GetId()) != id {
			continue
		}
		for _, ip := range cp.GetInstancePlans() {
			out = append(out, fmt.Sprintf("%s:%d", ip.GetComponentName(), ip.GetTaskId()))
		}
	}
	sort.Strings(out)
	return out
}

// Update changes parallelism and/or the container count through the
// scheduler (which launches and kills container tasks), or sends runtime
// configuration to the topology manager.
func (c *Client) Update(ctx context.Context, topology string, parallelism map[string]int, containers int, runtimeConfig []string) error {
	if len(runtimeConfig) > 0 {
		if len(parallelism) > 0 || containers > 0 {
			return errors.New("update: runtime configuration cannot be combined with parallelism or container changes")
		}
		return c.tmanager(ctx, topology, "runtime_config/update", map[string][]string{"runtime-config": runtimeConfig})
	}
	s, err := c.open(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	if err := c.checkTopology(ctx, s, topology); err != nil {
		return err
	}
	t, err := statemgr.Topology(ctx, s.sm, topology)
	if err != nil {
		return err
	}
	cur, err := statemgr.PackingPlan(ctx, s.sm, topology)
	if err != nil {
		return err
	}
	params, err := packing.ParamsFromConfig(s.cfg)
	if err != nil {
		return err
	}
	proposed, err := packing.Repack(t, cur, packing.Changes{Parallelism: parallelism, Containers: containers}, params)
	if err != nil {
		return fmt.Errorf("update %q: %w", topology, err)
	}
	if c.opts.DryRun {
		return c.printPlan(proposed)
	}
	base, err := c.schedulerURL(ctx, s, topology)
	if err != nil {
		return err
	}
	return c.post(ctx, s, base, "/update", &model.UpdateTopologyRequest{CurrentPackingPlan: cur, ProposedPackingPlan: proposed})
}
