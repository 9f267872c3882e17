package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
	"egret/heron/packing"
	"egret/heron/statemgr"
)

func init() {
	register("state", "local state manager watch latency, round-robin packing, configuration loading", runState)
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func runState(ctx context.Context, env *Env) ([]Row, error) {
	samples := 50
	if env.Quick {
		samples = 5
	}
	sm, err := statemgr.NewLocal(filepath.Join(env.Tmp, "state-bench"))
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := sm.Watch(wctx, statemgr.PackingPlans, "t")
	if err != nil {
		return nil, err
	}
	var watch []time.Duration
	for i := 0; i < samples; i++ {
		select {
		case <-ch:
		default:
		}
		start := time.Now()
		if err := sm.Set(ctx, statemgr.PackingPlans, "t", []byte(fmt.Sprint(i))); err != nil {
			return nil, err
		}
		select {
		case <-ch:
			watch = append(watch, time.Since(start))
		case <-time.After(5 * time.Second):
			return nil, fmt.Errorf("local watch: no signal within 5s")
		}
	}

	topo := &model.Topology{Id: proto.String("big"), Name: proto.String("big"), State: model.TopologyState_RUNNING.Enum(),
		TopologyConfig: &model.Config{Kvs: []*model.Config_KeyValue{{Key: proto.String(packing.KeyStmgrs), Value: proto.String("100")}}}}
	for i := 0; i < 10; i++ {
		topo.Bolts = append(topo.Bolts, &model.Bolt{Comp: &model.Component{Name: proto.String(fmt.Sprintf("c%d", i)),
			Config: &model.Config{Kvs: []*model.Config_KeyValue{{Key: proto.String(packing.KeyParallelism), Value: proto.String("100")}}}}})
	}
	var pack []time.Duration
	for i := 0; i < samples; i++ {
		start := time.Now()
		if _, err := packing.RoundRobin(topo, packing.DefaultParams()); err != nil {
			return nil, err
		}
		pack = append(pack, time.Since(start))
	}
	var load []time.Duration
	for i := 0; i < samples; i++ {
		start := time.Now()
		if _, err := config.Load(config.Options{Cluster: "localzk", Role: "r", Topology: "t"}); err != nil {
			return nil, err
		}
		load = append(load, time.Since(start))
	}
	return []Row{
		{Figure: "local state: write to watch signal (median)", Value: median(watch).String(), Floor: "", Goal: "< 1s"},
		{Figure: "round-robin packing, 1000 instances in 100 containers (median)", Value: median(pack).String(), Goal: "< 100ms"},
		{Figure: "config.Load of a built-in cluster (median)", Value: median(load).String(), Goal: "< 50ms"},
	}, nil
}
