package framework

import (
	"fmt"
	"reflect"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

func scalar(name string, v float64, role string) mesos.Resource {
	r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	if role != "" {
		r.Role = &role
	}
	return r
}

func ports(role string, rs ...uint64) mesos.Resource {
	r := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{}}
	for i := 0; i+1 < len(rs); i += 2 {
		r.Ranges.Range = append(r.Ranges.Range, mesos.Value_Range{Begin: rs[i], End: rs[i+1]})
	}
	if role != "" {
		r.Role = &role
	}
	return r
}

func offer(id string, rs ...mesos.Resource) mesos.Offer {
	return mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: "agent-" + id}, Hostname: "h" + id, Resources: rs}
}

func big(id string, lo, hi uint64) mesos.Offer {
	return offer(id, scalar("cpus", 4, ""), scalar("mem", 4096, ""), scalar("disk", 10000, ""), ports("", lo, hi))
}

func TestMatch(t *testing.T) {
	need := Need{CPUs: 1, MemMB: 1024, DiskMB: 1000, Ports: 9}
	w := func(cs ...int) []Waiting {
		var ws []Waiting
		for _, c := range cs {
			ws = append(ws, Waiting{Container: c, Need: need})
		}
		return ws
	}
	tests := []struct {
		name       string
		waiting    []Waiting
		offers     []mesos.Offer
		wantPlaced map[int]string   // container → offer id
		wantPorts  map[int][]uint32 // container → ports (optional)
		wantUnused []string
	}{
		{
			name:       "too small: cpus",
			waiting:    w(0),
			offers:     []mesos.Offer{offer("a", scalar("cpus", 0.5, ""), scalar("mem", 4096, ""), scalar("disk", 9999, ""), ports("", 1000, 2000))},
			wantPlaced: map[int]string{},
			wantUnused: []string{"a"},
		},
		{
			name:       "too small: ports",
			waiting:    w(0),
			offers:     []mesos.Offer{offer("a", scalar("cpus", 4, ""), scalar("mem", 4096, ""), scalar("disk", 9999, ""), ports("", 1000, 1007))},
			wantPlaced: map[int]string{},
			wantUnused: []string{"a"},
		},
		{
			name:       "two containers fill one offer before the next",
			waiting:    w(1, 0),
			offers:     []mesos.Offer{big("a", 31000, 31100), big("b", 32000, 32100)},
			wantPlaced: map[int]string{0: "a", 1: "a"},
			wantPorts: map[int][]uint32{
				0: {31000, 31001, 31002, 31003, 31004, 31005, 31006, 31007, 31008},
				1: {31009, 31010, 31011, 31012, 31013, 31014, 31015, 31016, 31017},
			},
			wantUnused: []string{"b"},
		},
		{
			name:       "spill to the second offer when the first is full",
			waiting:    w(0, 1, 2, 3, 4),
			offers:     []mesos.Offer{big("a", 31000, 31100), big("b", 32000, 32100)},
			wantPlaced: map[int]string{0: "a", 1: "a", 2: "a", 3: "a", 4: "b"},
		},
		{
			name:    "fragmented port ranges",
			waiting: w(0),
			offers: []mesos.Offer{offer("a", scalar("cpus", 2, ""), scalar("mem", 2048, ""), scalar("disk", 2000, ""),
				ports("", 5000, 5001, 6000, 6002, 7000, 7000, 8000, 8010))},
			wantPlaced: map[int]string{0: "a"},
			wantPorts:  map[int][]uint32{0: {5000, 5001, 6000, 6001, 6002, 7000, 8000, 8001, 8002}},
		},
		{
			name:    "scalars split across the role's reservation and the unreserved pool",
			waiting: w(0),
			offers: []mesos.Offer{offer("a", scalar("cpus", 0.5, "heron"), scalar("cpus", 0.5, "*"), scalar("mem", 2048, ""),
				scalar("disk", 2000, ""), ports("heron", 100, 104), ports("*", 200, 210))},
			wantPlaced: map[int]string{0: "a"},
			wantPorts:  map[int][]uint32{0: {100, 101, 102, 103, 104, 200, 201, 202, 203}},
		},
		{
			name:    "another role's reservation is not ours",
			waiting: w(0),
			offers: []mesos.Offer{offer("a", scalar("cpus", 4, "other"), scalar("mem", 2048, ""),
				scalar("disk", 2000, ""), ports("", 100, 200))},
			wantPlaced: map[int]string{},
			wantUnused: []string{"a"},
		},
		{
			name:       "a container that does not fit does not block a smaller one",
			waiting:    []Waiting{{Container: 0, Need: Need{CPUs: 8}}, {Container: 1, Need: need}},
			offers:     []mesos.Offer{big("a", 1, 100)},
			wantPlaced: map[int]string{1: "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			placed, unused := Match(tt.waiting, tt.offers, "heron")
			got := map[int]string{}
			for _, p := range placed {
				got[p.Container] = p.Offer.ID.Value
				checkResources(t, p, tt.waiting)
				if want, ok := tt.wantPorts[p.Container]; ok && !reflect.DeepEqual(p.Ports, want) {
					t.Errorf("container %d ports = %v, want %v", p.Container, p.Ports, want)
				}
			}
			if !reflect.DeepEqual(got, tt.wantPlaced) {
				t.Errorf("placed = %v, want %v", got, tt.wantPlaced)
			}
			var gotUnused []string
			for _, o := range unused {
				gotUnused = append(gotUnused, o.ID.Value)
			}
			if fmt.Sprint(gotUnused) != fmt.Sprint(tt.wantUnused) {
				t.Errorf("unused = %v, want %v", gotUnused, tt.wantUnused)
			}
		})
	}
}

// checkResources verifies that a placement's resources add up to the need and
// are contained in the offer, as Mesos' master would check.
func checkResources(t *testing.T, p Placement, ws []Waiting) {
	t.Helper()
	var need Need
	for _, w := range ws {
		if w.Container == p.Container {
			need = w.Need
		}
	}
	sums := map[string]float64{}
	nports := 0
	for _, r := range p.Resources {
		if r.Scalar != nil {
			sums[r.Name] += r.Scalar.Value
		}
		if r.Ranges != nil {
			nports += int(mesos.Ranges(r.Ranges.Range).Size())
		}
	}
	if sums["cpus"] != need.CPUs || sums["mem"] != need.MemMB || sums["disk"] != need.DiskMB || nports != need.Ports {
		t.Errorf("container %d took %v and %d ports, want %+v", p.Container, sums, nports, need)
	}
	if !within(p.Offer.Resources, p.Resources) {
		t.Errorf("container %d took %v, not within offer %v", p.Container, mesos.Resources(p.Resources), mesos.Resources(p.Offer.Resources))
	}
}

func within(offered, taken []mesos.Resource) bool {
	left := mesos.Resources(offered).Clone()
	for _, r := range taken {
		if !resources.Contains(left, r) {
			return false
		}
		left.Subtract1(r)
	}
	return true
}
