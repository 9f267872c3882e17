package container

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/heron/statemgr"
)

// TestWatchIgnoresEmptyPlan: a packing plan node overwritten with a truncated
// message, or a plan without containers, must not be handed on, or the
// container stops every process. The next real plan still comes through.
func TestWatchIgnoresEmptyPlan(t *testing.T) {
	sm, err := statemgr.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	one := &Plan{ID: "p1", Containers: []ContainerPlan{{ID: 1, Instances: []InstancePlan{{Component: "word", TaskID: 1, Index: 0}}}}}
	if err := statemgr.SetPackingPlan(ctx, sm, "t", planToModel(one)); err != nil {
		t.Fatal(err)
	}
	ch, err := StatePlans(sm).WatchPackingPlan(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if p := <-ch; p == nil || p.ID != "p1" {
		t.Fatalf("first plan = %+v, want p1", p)
	}
	// An emptied node, half a plan, and a plan without containers.
	half, err := proto.Marshal(planToModel(one))
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{nil, half[:len(half)/2]} {
		if err := sm.Set(ctx, statemgr.PackingPlans, "t", raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := statemgr.SetPackingPlan(ctx, sm, "t", &model.PackingPlan{Id: proto.String("no-containers")}); err != nil {
		t.Fatal(err)
	}
	two := &Plan{ID: "p2", Containers: one.Containers}
	if err := statemgr.SetPackingPlan(ctx, sm, "t", planToModel(two)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-ch:
		if p == nil || p.ID != "p2" {
			t.Errorf("plan after an empty one = %+v, want p2 (the empty plan must be skipped)", p)
		}
	case <-ctx.Done():
		t.Fatal("no plan after the empty ones")
	}
}
