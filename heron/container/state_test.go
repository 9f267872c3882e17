package container

import (
	"context"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/heron/statemgr"
	"egret/test/zktest"
)

// testState is a real state manager seen by the tests.
type testState interface {
	conn() string
	root() string
	setTopology(t *testing.T, name string)
	setPlan(t *testing.T, topology string, p *Plan)
	waitPhysicalPlan(t *testing.T, topology string, d time.Duration, pred func(*model.PhysicalPlan) bool) *model.PhysicalPlan
}

// stmgrIDs lists a physical plan's stream managers, sorted.
func stmgrIDs(pp *model.PhysicalPlan) []string {
	var ids []string
	for _, st := range pp.GetStmgrs() {
		ids = append(ids, st.GetId())
	}
	sort.Strings(ids)
	return ids
}

type smTestState struct {
	sm         statemgr.StateManager
	connection string
	rootPath   string
}

func (s *smTestState) conn() string { return s.connection }
func (s *smTestState) root() string { return s.rootPath }

func localTestState(t *testing.T) testState {
	t.Helper()
	dir := t.TempDir()
	sm, err := statemgr.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	return &smTestState{sm: sm, connection: "LOCALMODE", rootPath: dir}
}

func zkTestState(t *testing.T) testState {
	t.Helper()
	srv := zktest.Start(t)
	f := &Flags{StateManagerConnection: srv.Addr(), StateManagerRoot: "/heron"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sm, err := OpenStateManager(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	return &smTestState{sm: sm, connection: srv.Addr(), rootPath: "/heron"}
}

func (s *smTestState) setTopology(t *testing.T, name string) {
	t.Helper()
	err := statemgr.SetTopology(context.Background(), s.sm, &model.Topology{
		Id: proto.String(name + "-id"), Name: proto.String(name), State: model.TopologyState_RUNNING.Enum(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func planToModel(p *Plan) *model.PackingPlan {
	res := func() *model.Resource {
		return &model.Resource{Cpu: proto.Float64(1), Ram: proto.Int64(512 << 20), Disk: proto.Int64(1 << 30)}
	}
	pp := &model.PackingPlan{Id: proto.String(p.ID)}
	for _, c := range p.Containers {
		cp := &model.ContainerPlan{Id: proto.Int32(int32(c.ID)), RequiredResource: res()}
		for _, in := range c.Instances {
			cp.InstancePlans = append(cp.InstancePlans, &model.InstancePlan{
				ComponentName: proto.String(in.Component), TaskId: proto.Int32(int32(in.TaskID)),
				ComponentIndex: proto.Int32(int32(in.Index)), Resource: res(),
			})
		}
		pp.ContainerPlans = append(pp.ContainerPlans, cp)
	}
	return pp
}

func (s *smTestState) setPlan(t *testing.T, topology string, p *Plan) {
	t.Helper()
	if err := statemgr.SetPackingPlan(context.Background(), s.sm, topology, planToModel(p)); err != nil {
		t.Fatal(err)
	}
}

// waitPhysicalPlan waits, through a watch, for a physical plan whose stream
// managers satisfy pred.
func (s *smTestState) waitPhysicalPlan(t *testing.T, topology string, d time.Duration, pred func(*model.PhysicalPlan) bool) *model.PhysicalPlan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	sig, err := s.sm.Watch(ctx, statemgr.PhysicalPlans, topology)
	if err != nil {
		t.Fatal(err)
	}
	var last *model.PhysicalPlan
	for {
		if pp, err := statemgr.PhysicalPlan(ctx, s.sm, topology); err == nil {
			last = pp
			if pred(pp) {
				return pp
			}
		}
		select {
		case _, ok := <-sig:
			if !ok {
				t.Fatalf("no physical plan as wanted within %s; last: %v", d, last)
			}
		case <-ctx.Done():
			t.Fatalf("no physical plan as wanted within %s; last: %v", d, last)
		}
	}
}
