package localsched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Submit launches a topology: it refuses one that exists, computes the
// packing plan, lays out one sandbox per container in the working directory
// (core release through the fetcher's cache, the topology package), writes
// the topology, packing plan and execution state, and starts the scheduler
// daemon, returning once the containers started or with the reason they did
// not. Whatever fails on the way is undone.
func (c *Client) Submit(ctx context.Context, pkg string, deployDeactivated bool) (err error) {
	begin := time.Now()
	tmp, err := os.MkdirTemp("", "egret-submit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var (
		p *topoPackage
		s settings
	)
	if isSpec(pkg) {
		spec, err := specName(pkg)
		if err != nil {
			return err
		}
		if s, err = loadSettings(c.opts, spec.Name); err != nil {
			return err
		}
		c.verbose("building %s from %s", spec.Name, pkg)
		built, err := buildPackage(spec, tmp, s)
		if err != nil {
			return err
		}
		if p, err = readPackage(built); err != nil {
			return err
		}
	} else {
		if p, err = readPackage(pkg); err != nil {
			return err
		}
		if s, err = loadSettings(c.opts, p.Name); err != nil {
			return err
		}
	}
	name := p.Name
	plan, err := pack(s, p)
	if err != nil {
		return fmt.Errorf("packing %s: %w", name, err)
	}
	if c.opts.DryRun {
		return printPlan(c.opts.Out, c.opts.DryRunFormat, name, plan, func(container int) []string {
			f := s.executorFlags(p.li, plan, container, make([]int, len(portNames)))
			return append([]string{"egret", "heron-executor"}, f.Args()...)
		})
	}

	st, err := openState(ctx, s)
	if err != nil {
		return err
	}
	defer st.Close()
	if t, err := st.Topology(ctx, name); err != nil {
		return fmt.Errorf("submit %s: %w", name, err)
	} else if t != nil {
		return fmt.Errorf("topology %s already exists on cluster %s (kill it first: egret kill %s %s)", name, s.Cluster, s.Cluster, name)
	}
	wd := workdir(s.WorkingDirectory)
	if daemonRunning(wd) {
		return fmt.Errorf("a scheduler still runs in %s (lock %s); kill the topology first", wd, wd.lockFile())
	}
	if rest := processesUnder(string(wd)); len(rest) > 0 {
		return fmt.Errorf("processes %v still run in %s; kill them or the topology first", rest, wd)
	}

	wrote := false
	defer func() {
		if err == nil {
			return
		}
		// Undo: no process, no state; the working directory keeps the logs.
		stopLeftovers(context.Background(), wd, s.KillGrace, true)
		if wrote {
			st.DeleteAll(context.Background(), name)
		}
	}()

	c.progress("laying out %d containers in %s", len(plan.GetContainerPlans())+1, wd)
	if err := resetWorkdir(wd); err != nil {
		return err
	}
	core := s.CoreURI
	c.progress("fetching the Heron core release %s", core)
	if err := copyFile(p.Archive, wd.packageFile()); err != nil {
		return fmt.Errorf("keep the topology package: %w", err)
	}
	b, _ := json.MarshalIndent(p.li, "", "  ")
	if err := writeFileAtomic(wd.launchFile(), append(b, '\n')); err != nil {
		return err
	}
	for _, id := range containerIDs(plan) {
		if err := prepareSandbox(ctx, s, wd.container(id), wd.packageFile(), c.verbose); err != nil {
			return fmt.Errorf("container %d: %w", id, err)
		}
	}

	if err := st.Create(ctx, p.Topology(deployDeactivated), plan, s.executionState(p)); err != nil {
		return fmt.Errorf("submit %s: write its state: %w", name, err)
	}
	wrote = true
	c.progress("starting the scheduler and %d containers", len(plan.GetContainerPlans())+1)
	if err := c.startDaemon(ctx, s, name); err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Out, "Topology %s submitted to %s/%s/%s in %v: %d containers, working directory %s\n",
		name, s.Cluster, s.Role, s.Environment, time.Since(begin).Round(time.Millisecond), len(plan.GetContainerPlans())+1, wd)
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// resetWorkdir empties the working directory, as Heron's local launcher does
// on submit.
func resetWorkdir(wd workdir) error {
	if err := os.MkdirAll(string(wd), 0o755); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	ents, err := os.ReadDir(string(wd))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(string(wd), e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
