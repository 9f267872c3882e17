package localsched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"egret/heron/model"
)

// kill stops every container within the grace. The client removes the state.
func (d *daemon) kill(ctx context.Context, topology string) error {
	if err := d.checkName(topology); err != nil {
		return err
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*d.settings.KillGrace+5*time.Second)
	defer cancel()
	if err := d.execs.stopAll(ctx); err != nil {
		return fmt.Errorf("kill %s: %w", topology, err)
	}
	// Nothing is left to adopt.
	os.Remove(d.wd.stateFile())
	return nil
}

// restart replaces one container's executor, or all of them (-1).
func (d *daemon) restart(ctx context.Context, topology string, container int) error {
	if err := d.checkName(topology); err != nil {
		return err
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	targets, err := restartTargets(d.execs.containers(), container)
	if err != nil {
		return fmt.Errorf("restart %s: %w", topology, err)
	}
	var errs []error
	for _, c := range targets {
		if err := d.execs.restart(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restartTargets picks the containers a restart request names: -1 is all of
// them, as in Heron's RestartTopologyRequest; any other negative index is an
// error (it used to restart every container; found by make chaos).
func restartTargets(containers []int, container int) ([]int, error) {
	if container == -1 {
		return containers, nil
	}
	for _, c := range containers {
		if c == container {
			return []int{container}, nil
		}
	}
	return nil, fmt.Errorf("no container %d (containers: %v, or -1 for all)", container, containers)
}

func (d *daemon) checkName(topology string) error {
	if topology != d.opts.Topology {
		return fmt.Errorf("this scheduler runs topology %s, not %s", d.opts.Topology, topology)
	}
	return nil
}

// update follows Heron's update flow: take the update lock, check that the
// current plan is the one in the state tree, deactivate a running topology,
// start the added containers, rewrite the packing plan, reactivate once a
// physical plan is back, and stop the removed containers.
func (d *daemon) update(ctx context.Context, current, proposed *model.PackingPlan) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	name := d.opts.Topology
	unlock, err := d.st.Lock(ctx, name, 5*time.Second)
	if err != nil {
		return fmt.Errorf("update %s: take the update lock: %w", name, err)
	}
	defer unlock()

	stored, err := d.st.PackingPlan(ctx, name)
	if err != nil {
		return fmt.Errorf("update %s: %w", name, err)
	}
	if !samePlan(stored, current) {
		return fmt.Errorf("update %s: the packing plan changed since the update was computed; compute it again", name)
	}
	added, removed := planDiff(containerIDs(current), containerIDs(proposed))

	wasRunning := false
	if pp, err := d.st.PhysicalPlan(ctx, name); err == nil && pp != nil && pp.GetTopology().GetState() == model.TopologyState_RUNNING {
		wasRunning = true
		if err := d.tmanager(ctx, "deactivate"); err != nil {
			return fmt.Errorf("update %s: deactivate: %w", name, err)
		}
		d.log.Printf("update %s: deactivated", name)
	}
	// New executors get the proposed plan's RAM map; the plan node follows.
	d.setPlan(proposed)
	for _, c := range added {
		if err := d.prepareContainer(ctx, c); err != nil {
			return fmt.Errorf("update %s: container %d: %w", name, c, err)
		}
		if err := d.execs.start(c, nil); err != nil {
			return fmt.Errorf("update %s: %w", name, err)
		}
	}
	d.persist()
	// Watch before rewriting so the new physical plan cannot be missed.
	var pplanChanged <-chan struct{}
	if wasRunning {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pplanChanged, err = d.st.WatchPhysicalPlan(wctx, name)
		if err != nil {
			return fmt.Errorf("update %s: watch the physical plan: %w", name, err)
		}
	}
	if err := d.st.ReplacePackingPlan(ctx, name, proposed); err != nil {
		return fmt.Errorf("update %s: rewrite the packing plan: %w", name, err)
	}
	d.log.Printf("update %s: packing plan rewritten (added %v, removed %v)", name, added, removed)
	if wasRunning {
		if err := d.awaitPhysicalPlan(ctx, pplanChanged); err != nil {
			return fmt.Errorf("update %s: %w", name, err)
		}
		if err := d.tmanager(ctx, "activate"); err != nil {
			return fmt.Errorf("update %s: reactivate: %w", name, err)
		}
		d.log.Printf("update %s: reactivated", name)
	}
	for _, c := range removed {
		if err := d.execs.stop(ctx, c); err != nil {
			return fmt.Errorf("update %s: stop container %d: %w", name, c, err)
		}
	}
	d.persist()
	return nil
}

// awaitPhysicalPlan waits until the topology manager has published a
// physical plan again (it deletes it when the packing plan changes).
func (d *daemon) awaitPhysicalPlan(ctx context.Context, changed <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, d.settings.ReactivateWait)
	defer cancel()
	for {
		if pp, err := d.st.PhysicalPlan(ctx, d.opts.Topology); err == nil && pp != nil && d.pplanCurrent(ctx, pp) {
			return nil
		}
		select {
		case _, ok := <-changed:
			if !ok {
				return errors.New("the physical plan watch ended")
			}
		case <-ctx.Done():
			return fmt.Errorf("no physical plan within %v", d.settings.ReactivateWait)
		}
	}
}

// pplanCurrent reports whether a physical plan has a stream manager for every
// container of the current packing plan.
func (d *daemon) pplanCurrent(ctx context.Context, pp *model.PhysicalPlan) bool {
	plan, err := d.st.PackingPlan(ctx, d.opts.Topology)
	if err != nil || plan == nil {
		return false
	}
	return len(pp.GetStmgrs()) == len(plan.GetContainerPlans())
}

// tmanager asks the topology manager to activate or deactivate, as the
// CLI does: a topology already in the wanted state is left alone.
func (d *daemon) tmanager(ctx context.Context, action string) error {
	_, err := transition(ctx, d.st, d.opts.Topology, action == "activate")
	return err
}

// samePlan compares two packing plans by content.
func samePlan(a, b *model.PackingPlan) bool {
	return protoEqual(a, b)
}
