package executor

import (
	"context"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// heronTask runs one Heron container described by TaskData.
type heronTask struct {
	data  *TaskData
	heron HeronRunner
}

func (h *heronTask) run(ctx context.Context, tc *taskControl) outcome {
	if h.heron == nil {
		return outcome{state: mesos.TASK_FAILED, reason: mesos.REASON_TASK_INVALID.Enum(),
			message: "this executor cannot run Heron containers"}
	}
	ok, msg := h.heron.RunContainer(ctx, tc, h.data)
	if ok {
		return outcome{state: mesos.TASK_FINISHED, message: msg}
	}
	return outcome{state: mesos.TASK_FAILED, message: msg}
}
