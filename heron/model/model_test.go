package model

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

// The bytes below are worked out by hand from Heron's .proto field numbers and types
// (tag = field<<3 | wire type), so a renumbered or retyped field fails here.
func TestWireFormat(t *testing.T) {
	cases := []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{"KillTopologyRequest", &KillTopologyRequest{TopologyName: proto.String("wc")},
			[]byte{0x0a, 2, 'w', 'c'}},
		{"RestartTopologyRequest all", &RestartTopologyRequest{TopologyName: proto.String("wc"), ContainerIndex: proto.Int32(-1)},
			[]byte{0x0a, 2, 'w', 'c', 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"SchedulerResponse OK", &SchedulerResponse{Status: &Status{Status: StatusCode_OK.Enum()}},
			[]byte{0x0a, 2, 0x08, 1}},
		{"SchedulerLocation", &SchedulerLocation{TopologyName: proto.String("t"), HttpEndpoint: proto.String("h:1"), JobPageLink: []string{"x"}},
			[]byte{0x0a, 1, 't', 0x12, 3, 'h', ':', '1', 0x1a, 1, 'x'}},
		{"Resource", &Resource{Cpu: proto.Float64(1), Ram: proto.Int64(1024), Disk: proto.Int64(1)},
			[]byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x80, 0x08, 0x18, 1}},
		{"TManagerLocation", &TManagerLocation{TopologyName: proto.String("t"), TopologyId: proto.String("i"), Host: proto.String("h"),
			ControllerPort: proto.Int32(1), ServerPort: proto.Int32(2), StatsPort: proto.Int32(3)},
			[]byte{0x0a, 1, 't', 0x12, 1, 'i', 0x1a, 1, 'h', 0x20, 1, 0x28, 2, 0x30, 3}},
		{"ContainerPlan", &ContainerPlan{Id: proto.Int32(1), RequiredResource: &Resource{Cpu: proto.Float64(0), Ram: proto.Int64(0), Disk: proto.Int64(0)}},
			[]byte{0x08, 1, 0x1a, 13, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x18, 0}},
		{"Topology", &Topology{Id: proto.String("i"), Name: proto.String("n"), State: TopologyState_PAUSED.Enum()},
			[]byte{0x0a, 1, 'i', 0x12, 1, 'n', 0x28, 2}},
		{"ExecutionState", &ExecutionState{TopologyName: proto.String("n"), TopologyId: proto.String("i"), Cluster: proto.String("c"), Environ: proto.String("e"), Role: proto.String("r")},
			[]byte{0x0a, 1, 'n', 0x12, 1, 'i', 0x2a, 1, 'c', 0x32, 1, 'e', 0x3a, 1, 'r'}},
	}
	for _, c := range cases {
		got, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.msg)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s = % x, want % x", c.name, got, c.want)
		}
	}
}

func TestRequiredFields(t *testing.T) {
	// Heron's messages are proto2: a missing required field is refused, as Heron's Java does.
	if _, err := proto.Marshal(&KillTopologyRequest{}); err == nil {
		t.Error("KillTopologyRequest without topology_name encoded")
	}
	if err := proto.Unmarshal([]byte{0x10, 1}, &RestartTopologyRequest{}); err == nil {
		t.Error("RestartTopologyRequest without topology_name decoded")
	}
}

func TestNames(t *testing.T) {
	for m, want := range map[proto.Message]string{
		&Topology{}:                      "heron.proto.api.Topology",
		&PackingPlan{}:                   "heron.proto.system.PackingPlan",
		&PhysicalPlan{}:                  "heron.proto.system.PhysicalPlan",
		&ExecutionState{}:                "heron.proto.system.ExecutionState",
		&TManagerLocation{}:              "heron.proto.tmanager.TManagerLocation",
		&SchedulerLocation{}:             "heron.proto.scheduler.SchedulerLocation",
		&UpdateTopologyRequest{}:         "heron.proto.scheduler.UpdateTopologyRequest",
		&StatefulConsistentCheckpoints{}: "heron.proto.ckptmgr.StatefulConsistentCheckpoints",
	} {
		if got := string(m.ProtoReflect().Descriptor().FullName()); got != want {
			t.Errorf("%T is %s, want %s", m, got, want)
		}
	}
}
