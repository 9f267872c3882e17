package framework

import (
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Need is what one container asks of an offer.
type Need struct {
	CPUs   float64
	MemMB  float64
	DiskMB float64
	Ports  int
}

// fits reports whether the pool can give need.
func (p *pool) fits(n Need) bool {
	return p.scalar("cpus") >= n.CPUs-1e-9 && p.scalar("mem") >= n.MemMB-1e-9 &&
		p.scalar("disk") >= n.DiskMB-1e-9 && p.portCount() >= n.Ports
}

// pool is the part of one offer not yet given to a task. Each chunk keeps the
// offered resource it came from, so that what a task takes carries the same
// role, reservation and allocation as the offer (Mesos refuses anything else).
type pool struct {
	offer  mesos.Offer
	chunks []mesos.Resource
}

// usableBy reports whether a framework in role may use r: unreserved, or
// reserved (statically or dynamically) for the role. Revocable resources and
// persistent volumes are left alone.
func usableBy(r mesos.Resource, role string) bool {
	if r.Revocable != nil || r.IsPersistentVolume() || r.GetDisk().GetSource() != nil {
		return false
	}
	rr := r.ReservationRole()
	return rr == "*" || rr == "" || rr == role
}

func newPool(o mesos.Offer, role string) *pool {
	p := &pool{offer: o}
	for _, r := range o.Resources {
		switch r.Name {
		case "cpus", "mem", "disk", "ports":
		default:
			continue
		}
		if !usableBy(r, role) {
			continue
		}
		p.chunks = append(p.chunks, *cloneResource(r))
	}
	return p
}

func cloneResource(r mesos.Resource) *mesos.Resource {
	c := r
	if r.Scalar != nil {
		s := *r.Scalar
		c.Scalar = &s
	}
	if r.Ranges != nil {
		c.Ranges = &mesos.Value_Ranges{Range: append([]mesos.Value_Range(nil), r.Ranges.Range...)}
	}
	return &c
}

func (p *pool) scalar(name string) float64 {
	var sum float64
	for _, c := range p.chunks {
		if c.Name == name && c.Scalar != nil {
			sum += c.Scalar.Value
		}
	}
	return sum
}

func (p *pool) portCount() int {
	n := 0
	for _, c := range p.chunks {
		if c.Name == "ports" && c.Ranges != nil {
			for _, r := range c.Ranges.Range {
				if r.End >= r.Begin {
					n += int(r.End - r.Begin + 1)
				}
			}
		}
	}
	return n
}

// takeScalar removes amount of name from the chunks, in their order, and
// returns the resources taken (one per chunk touched).
func (p *pool) takeScalar(name string, amount float64) []mesos.Resource {
	var out []mesos.Resource
	for i := range p.chunks {
		c := &p.chunks[i]
		if amount <= 1e-9 {
			break
		}
		if c.Name != name || c.Scalar == nil || c.Scalar.Value <= 1e-9 {
			continue
		}
		take := amount
		if c.Scalar.Value < take {
			take = c.Scalar.Value
		}
		c.Scalar.Value -= take
		amount -= take
		r := *cloneResource(*c)
		r.Scalar = &mesos.Value_Scalar{Value: take}
		out = append(out, r)
	}
	return out
}

// takePorts removes the n lowest ports, from as many ranges (and chunks) as
// it takes, and returns the ports in order with the resources that hold them.
func (p *pool) takePorts(n int) ([]uint32, []mesos.Resource) {
	var ports []uint32
	var out []mesos.Resource
	for i := range p.chunks {
		c := &p.chunks[i]
		if n == 0 {
			break
		}
		if c.Name != "ports" || c.Ranges == nil {
			continue
		}
		rs := mesos.Ranges(c.Ranges.Range).Sort().Squash()
		var taken []uint64
		for _, r := range rs {
			for v := r.Begin; v <= r.End && n > 0; v++ {
				taken = append(taken, v)
				n--
			}
			if n == 0 {
				break
			}
		}
		if len(taken) == 0 {
			continue
		}
		left := rs
		for _, v := range taken {
			left = left.Remove(mesos.Value_Range{Begin: v, End: v})
			ports = append(ports, uint32(v))
		}
		c.Ranges.Range = left
		r := *cloneResource(*c)
		r.Ranges = &mesos.Value_Ranges{Range: mesos.NewRanges(taken...)}
		out = append(out, r)
	}
	return ports, out
}

// take carves n out of the pool; the caller has checked that it fits.
func (p *pool) take(n Need) ([]mesos.Resource, []uint32) {
	var rs []mesos.Resource
	rs = append(rs, p.takeScalar("cpus", n.CPUs)...)
	rs = append(rs, p.takeScalar("mem", n.MemMB)...)
	rs = append(rs, p.takeScalar("disk", n.DiskMB)...)
	ports, pr := p.takePorts(n.Ports)
	return append(rs, pr...), ports
}

// Waiting is a container waiting for resources.
type Waiting struct {
	Container int
	Need      Need
}

// Placement is one container's share of one offer.
type Placement struct {
	Container int
	Offer     mesos.Offer
	Resources []mesos.Resource
	Ports     []uint32 // in ascending order
}

// Match places waiting containers on offers: containers in index order, each
// on the first offer (in the order given) with room left for it, so offers
// fill up before the next one is touched and a container never waits behind
// one that does not fit. It returns the placements and the offers nothing was
// placed on.
func Match(waiting []Waiting, offers []mesos.Offer, role string) (placed []Placement, unused []mesos.Offer) {
	ws := append([]Waiting(nil), waiting...)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Container < ws[j].Container })
	pools := make([]*pool, len(offers))
	for i, o := range offers {
		pools[i] = newPool(o, role)
	}
	used := make([]bool, len(offers))
	for _, w := range ws {
		for i, p := range pools {
			if !p.fits(w.Need) {
				continue
			}
			rs, ports := p.take(w.Need)
			placed = append(placed, Placement{Container: w.Container, Offer: offers[i], Resources: rs, Ports: ports})
			used[i] = true
			break
		}
	}
	for i, o := range offers {
		if !used[i] {
			unused = append(unused, o)
		}
	}
	return placed, unused
}
