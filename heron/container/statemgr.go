package container

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/heron/statemgr"
)

// OpenStateManager opens the state manager the flags name: LOCALMODE is the
// local file system at --state-manager-root, anything else ZooKeeper at that
// connection string, rooted at --state-manager-root (the root the daemons
// get, so the executor and its children cannot disagree).
func OpenStateManager(ctx context.Context, f *Flags) (statemgr.StateManager, error) {
	if strings.EqualFold(f.StateManagerConnection, "LOCALMODE") {
		return statemgr.NewLocal(f.StateManagerRoot)
	}
	return statemgr.NewZK(ctx, zkOptions(f))
}

// StatePlans adapts a state manager to PlanWatcher.
func StatePlans(sm statemgr.StateManager) PlanWatcher { return statePlans{sm} }

type statePlans struct{ sm statemgr.StateManager }

// WatchPackingPlan watches packingplans/<topology> and sends the plan at
// once and after every change of its content (a missing node is nil).
func (s statePlans) WatchPackingPlan(ctx context.Context, topology string) (<-chan *Plan, error) {
	changed, err := s.sm.Watch(ctx, statemgr.PackingPlans, topology)
	if err != nil {
		return nil, err
	}
	read := func() (*model.PackingPlan, error) {
		pp, err := statemgr.PackingPlan(ctx, s.sm, topology)
		if errors.Is(err, statemgr.ErrNotFound) {
			return nil, nil
		}
		return pp, err
	}
	first, err := read()
	if err != nil {
		return nil, fmt.Errorf("read the packing plan: %w", err)
	}
	out := make(chan *Plan)
	go func() {
		defer close(out)
		cur := first
		send := func(pp *model.PackingPlan) bool {
			select {
			case out <- PlanFromModel(pp):
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(cur) {
			return
		}
		for range changed {
			pp, err := read()
			if err != nil {
				continue // unreachable store: the next change signal retries
			}
			if pp == nil && cur != nil {
				// The node vanished or was emptied under a running container:
				// a kill stops the container itself, so do not stop every
				// process on a damaged node (found by make chaos).
				continue
			}
			if pp != nil && (pp.GetId() == "" || len(pp.GetContainerPlans()) == 0) {
				// A damaged node can decode to a plan without id or containers;
				// applying it would stop every process of the container (found
				// by make chaos). Keep the current plan.
				continue
			}
			if (pp == nil) == (cur == nil) && (pp == nil || proto.Equal(pp, cur)) {
				continue
			}
			cur = pp
			if !send(cur) {
				return
			}
		}
	}()
	return out, nil
}

func openPlanWatcher(ctx context.Context, f *Flags) (PlanWatcher, func(), error) {
	sm, err := OpenStateManager(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	return StatePlans(sm), func() { sm.Close() }, nil
}

func zkOptions(f *Flags) statemgr.ZKOptions {
	return statemgr.ZKOptions{Servers: strings.Split(f.StateManagerConnection, ","), Root: f.StateManagerRoot, InitTree: true}
}
