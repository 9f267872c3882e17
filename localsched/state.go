package localsched

import (
	"context"
	"errors"
	"fmt"
	"time"

	"egret/heron/model"
	"egret/heron/statemgr"

	"google.golang.org/protobuf/proto"
)

// stateTree is the topology's part of Heron's state tree as the local
// scheduler uses it; a missing node reads as nil, not as an error.
type stateTree struct {
	sm statemgr.StateManager
}

func openState(ctx context.Context, s settings) (stateTree, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sm, err := statemgr.Open(ctx, s.cfg)
	if err != nil {
		return stateTree{}, fmt.Errorf("state manager of cluster %s (%s at %s): %w", s.Cluster, s.StateConnection, s.StateRoot, err)
	}
	return stateTree{sm: sm}, nil
}

func (t stateTree) Close() error {
	if t.sm == nil {
		return nil
	}
	return t.sm.Close()
}

// missing turns "no such node" into nil.
func missing[M any](m *M, err error) (*M, error) {
	if errors.Is(err, statemgr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (t stateTree) Topology(ctx context.Context, name string) (*model.Topology, error) {
	return missing(statemgr.Topology(ctx, t.sm, name))
}

func (t stateTree) PackingPlan(ctx context.Context, name string) (*model.PackingPlan, error) {
	return missing(statemgr.PackingPlan(ctx, t.sm, name))
}

func (t stateTree) ExecutionState(ctx context.Context, name string) (*model.ExecutionState, error) {
	return missing(statemgr.ExecutionState(ctx, t.sm, name))
}

func (t stateTree) PhysicalPlan(ctx context.Context, name string) (*model.PhysicalPlan, error) {
	return missing(statemgr.PhysicalPlan(ctx, t.sm, name))
}

func (t stateTree) TManagerLocation(ctx context.Context, name string) (*model.TManagerLocation, error) {
	return missing(statemgr.TManagerLocation(ctx, t.sm, name))
}

func (t stateTree) SchedulerLocation(ctx context.Context, name string) (*model.SchedulerLocation, error) {
	return missing(statemgr.SchedulerLocation(ctx, t.sm, name))
}

func (t stateTree) SetSchedulerLocation(ctx context.Context, name, endpoint string) error {
	return statemgr.SetSchedulerLocation(ctx, t.sm, &model.SchedulerLocation{TopologyName: proto.String(name), HttpEndpoint: proto.String(endpoint)})
}

func (t stateTree) DeleteSchedulerLocation(ctx context.Context, name string) error {
	return t.sm.Delete(ctx, statemgr.Schedulers, name)
}

func (t stateTree) DeleteTManagerLocation(ctx context.Context, name string) error {
	return t.sm.Delete(ctx, statemgr.TManagers, name)
}

// ReplacePackingPlan rewrites the plan (delete then create, which every
// executor's and the topology manager's watch sees).
func (t stateTree) ReplacePackingPlan(ctx context.Context, name string, p *model.PackingPlan) error {
	b, err := proto.Marshal(p)
	if err != nil {
		return err
	}
	return t.sm.Replace(ctx, statemgr.PackingPlans, name, b)
}

func (t stateTree) WatchPhysicalPlan(ctx context.Context, name string) (<-chan struct{}, error) {
	return t.sm.Watch(ctx, statemgr.PhysicalPlans, name)
}

// Lock takes Heron's update lock, giving up after timeout.
func (t stateTree) Lock(ctx context.Context, name string, timeout time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := t.sm.Lock(ctx, name, "updateTopology")
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("another update of %s holds the lock (waited %v)", name, timeout)
		}
		return nil, err
	}
	return func() { u.Unlock() }, nil
}

// Create writes a new topology's nodes as Heron's LaunchRunner does:
// topology, packing plan, execution state; a failure removes what was written.
func (t stateTree) Create(ctx context.Context, topo *model.Topology, plan *model.PackingPlan, es *model.ExecutionState) error {
	name := topo.GetName()
	if err := statemgr.SetTopology(ctx, t.sm, topo); err != nil {
		if errors.Is(err, statemgr.ErrExists) {
			return fmt.Errorf("topology %s already exists", name)
		}
		return err
	}
	err := statemgr.SetPackingPlan(ctx, t.sm, name, plan)
	if err == nil {
		err = statemgr.SetExecutionState(ctx, t.sm, es)
	}
	if err != nil {
		statemgr.CleanTopology(context.Background(), t.sm, name)
		return err
	}
	return nil
}

// DeleteAll removes every node of the topology, the topology node last;
// missing nodes are fine.
func (t stateTree) DeleteAll(ctx context.Context, name string) error {
	return statemgr.CleanTopology(ctx, t.sm, name)
}

// List returns the cluster's topologies.
func (t stateTree) List(ctx context.Context) ([]string, error) {
	return t.sm.List(ctx, statemgr.Topologies)
}
