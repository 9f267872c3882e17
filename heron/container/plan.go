package container

import "egret/heron/model"

// PlanFromModel is the part of Heron's PackingPlan the runtime uses; nil
// stays nil (no plan).
func PlanFromModel(pp *model.PackingPlan) *Plan {
	if pp == nil {
		return nil
	}
	p := &Plan{ID: pp.GetId()}
	for _, c := range pp.GetContainerPlans() {
		cp := ContainerPlan{ID: int(c.GetId())}
		for _, in := range c.GetInstancePlans() {
			cp.Instances = append(cp.Instances, InstancePlan{
				Component: in.GetComponentName(),
				TaskID:    int(in.GetTaskId()),
				Index:     int(in.GetComponentIndex()),
			})
		}
		p.Containers = append(p.Containers, cp)
	}
	return p
}
