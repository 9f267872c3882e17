package main

import (
	"fmt"
	"net"
	"strconv"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
)

func planFromModel(pp *model.PackingPlan) *simPlan {
	if pp == nil {
		return nil
	}
	p := &simPlan{ID: pp.GetId()}
	for _, c := range pp.GetContainerPlans() {
		sc := simContainer{ID: int(c.GetId())}
		for _, in := range c.GetInstancePlans() {
			sc.Instances = append(sc.Instances, simInstance{in.GetComponentName(), int(in.GetTaskId()), int(in.GetComponentIndex())})
		}
		p.Containers = append(p.Containers, sc)
	}
	return p
}

// physicalPlan is what the tmanager publishes: the topology with its live
// state, the registered stream managers and every instance of the plan.
func physicalPlan(topo *model.Topology, plan *simPlan, stmgrs []stmgrInfo, paused bool) *model.PhysicalPlan {
	t := proto.Clone(topo).(*model.Topology)
	state := model.TopologyState_RUNNING
	if paused {
		state = model.TopologyState_PAUSED
	}
	t.State = state.Enum()
	pp := &model.PhysicalPlan{Topology: t}
	for _, s := range stmgrs {
		pp.Stmgrs = append(pp.Stmgrs, &model.StMgr{
			Id:            proto.String(s.ID),
			HostName:      proto.String(s.Host),
			DataPort:      proto.Int32(int32(s.DataPort)),
			LocalDataPort: proto.Int32(int32(s.LocalDataPort)),
			LocalEndpoint: proto.String(net.JoinHostPort(s.Host, strconv.Itoa(s.LocalDataPort))),
			Cwd:           proto.String(s.Cwd),
			Pid:           proto.Int32(int32(s.PID)),
			ShellPort:     proto.Int32(int32(s.ShellPort)),
		})
	}
	for _, c := range plan.Containers {
		for _, in := range c.Instances {
			pp.Instances = append(pp.Instances, &model.Instance{
				InstanceId: proto.String(fmt.Sprintf("container_%d_%s_%d", c.ID, in.Component, in.TaskID)),
				StmgrId:    proto.String(fmt.Sprintf("stmgr-%d", c.ID)),
				Info: &model.InstanceInfo{
					TaskId:         proto.Int32(int32(in.TaskID)),
					ComponentIndex: proto.Int32(int32(in.Index)),
					ComponentName:  proto.String(in.Component),
				},
			})
		}
	}
	return pp
}
