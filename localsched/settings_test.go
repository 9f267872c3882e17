package localsched

import (
	"testing"
	"time"

	"egret/heron/container"
	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// The executor flags the scheduler builds must be ones egret heron-executor
// accepts, for every shard, with Heron's port meanings.
func TestExecutorFlagsParse(t *testing.T) {
	s := settings{Cluster: "local", Role: "ann", Environment: "default", Topology: "wc", KillGrace: 5 * time.Second,
		StateConnection: "LOCALMODE", StateRoot: "/tmp/state", JavaHome: "./heron-core/java", MetricsCacheMode: "cluster", HealthMgrMode: "disabled"}
	li := launchInfo{FormatVersion: 1, TopologyID: "wc-1", PkgType: "jar", Binary: "wc.jar", Classpath: "wc.jar", DefnFile: "wc.defn"}
	res := &model.Resource{Cpu: proto.Float64(1), Ram: proto.Int64(1 << 30), Disk: proto.Int64(1 << 30)}
	plan := &model.PackingPlan{Id: proto.String("p"), ContainerPlans: []*model.ContainerPlan{{Id: proto.Int32(1), RequiredResource: res,
		InstancePlans: []*model.InstancePlan{{ComponentName: proto.String("word"), TaskId: proto.Int32(1), ComponentIndex: proto.Int32(0), Resource: res}}}}}
	ports := []int{1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009}
	for _, shard := range []int{0, 1} {
		args := s.executorFlags(li, plan, shard, ports).Args()
		f, err := container.ParseFlags(args)
		if err != nil {
			t.Fatalf("shard %d: ParseFlags(%q) = %v", shard, args, err)
		}
		if f.Shard != shard || f.ServerPort != 1001 || f.TManagerControllerPort != 1002 || f.CheckpointManagerPort != 1009 ||
			f.ComponentRAMMap["word"] != 1<<30 || f.StopGrace != 4*time.Second || f.TopologyID != "wc-1" {
			t.Errorf("shard %d: parsed back as %+v", shard, f)
		}
	}
}
