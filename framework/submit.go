package framework

import (
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
	"egret/heron/topology"

	"google.golang.org/protobuf/proto"
)

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
	var spec *topology.Spec
	var info *topology.Package
	var name string
	switch ext := strings.ToLower(filepath.Ext(pkg)); {
	case ext == ".yaml" || ext == ".yml":
		sp, err := topology.LoadSpec(pkg)
		if err != nil {
			return err
		}
		spec, name = sp, sp.Name
	case strings.HasSuffix(strings.ToLower(pkg), ".tar.gz") || ext == ".tgz":
		p, err := topology.ReadPackage(pkg)
		if err != nil {
			return err
		}
		if len(p.ConfFiles) == 0 {
			return fmt.Errorf("topology package %s has no heron-conf/: the containers on Mesos get their configuration only from the package", pkg)
		}
		info, name = p, p.Topology.GetName()
	default:
		return fmt.Errorf("submit %s: want a topology package (.tar.gz) or spec (.yaml)", pkg)
	}
	s, err := c.open(ctx, name)
	if err != nil {
		return err
	}
	defer s.sm.Close()
	if spec != nil {
		// The package carries the cluster's configuration as heron-conf/.
		tmp, err := os.MkdirTemp("", "egret-submit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		res, err := topology.Build(spec, tmp, s.cfg)
		if err != nil {
			return err
		}
		if info, err = topology.ReadPackage(res.Package); err != nil {
			return err
		}
		pkg = res.Package
	}
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
	rec := Record{Package: &Package{URI: "file://" + dest, Checksum: sum, Binary: info.Binary, PkgType: info.PackageType}}
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
	s, err := c.openTopology(ctx, topology)
	if err != nil {
		return err
	}
	defer s.sm.Close()
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
