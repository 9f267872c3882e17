package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/heron/statemgr"
)

// openState opens the state manager the daemon's flags name, the way
// Heron's C++ daemons do: LOCALMODE (or empty) is the local file system at
// the root, anything else ZooKeeper.
func openState(ctx context.Context, conn, root, topology string) (state, error) {
	var sm statemgr.StateManager
	var err error
	if conn == "" || strings.EqualFold(conn, "LOCALMODE") {
		sm, err = statemgr.NewLocal(root)
	} else {
		sm, err = statemgr.NewZK(ctx, zkOptions(conn, root))
	}
	if err != nil {
		return nil, fmt.Errorf("state manager %q: %w", conn, err)
	}
	return &smState{sm: sm, topology: topology}, nil
}

type smState struct {
	sm       statemgr.StateManager
	topology string
	topo     *model.Topology
	tmID     string
}

func (s *smState) Close() error { return s.sm.Close() }

func (s *smState) packingPlan(ctx context.Context) (*model.PackingPlan, error) {
	pp, err := statemgr.PackingPlan(ctx, s.sm, s.topology)
	if errors.Is(err, statemgr.ErrNotFound) {
		return nil, nil
	}
	return pp, err
}

// WatchPackingPlan returns the plan and a channel closed once its content changes.
func (s *smState) WatchPackingPlan(ctx context.Context) (*simPlan, <-chan struct{}, error) {
	sig, err := s.sm.Watch(ctx, statemgr.PackingPlans, s.topology)
	if err != nil {
		return nil, nil, err
	}
	first, err := s.packingPlan(ctx)
	if err != nil {
		return nil, nil, err
	}
	changed := make(chan struct{})
	go func() {
		for range sig {
			pp, err := s.packingPlan(ctx)
			if err != nil {
				continue
			}
			if (pp == nil) != (first == nil) || (pp != nil && !proto.Equal(pp, first)) {
				close(changed)
				for range sig { // drain until the watch ends with ctx
				}
				return
			}
		}
	}()
	return planFromModel(first), changed, nil
}

func (s *smState) InitiallyPaused(ctx context.Context) bool {
	t, err := statemgr.Topology(ctx, s.sm, s.topology)
	if err != nil {
		return false
	}
	s.topo = t
	return t.GetState() == model.TopologyState_PAUSED
}

func (s *smState) PublishTManager(ctx context.Context, host string, server, controller, stats int) error {
	if s.topo == nil {
		t, err := statemgr.Topology(ctx, s.sm, s.topology)
		if err != nil {
			return fmt.Errorf("read topology %s: %w", s.topology, err)
		}
		s.topo = t
	}
	return statemgr.SetTManagerLocation(ctx, s.sm, &model.TManagerLocation{
		TopologyName:   proto.String(s.topology),
		TopologyId:     proto.String(s.topo.GetId()),
		Host:           proto.String(host),
		ServerPort:     proto.Int32(int32(server)),
		ControllerPort: proto.Int32(int32(controller)),
		StatsPort:      proto.Int32(int32(stats)),
	})
}

// WatchTManagerLost is closed when the tmanager's location node disappears.
func (s *smState) WatchTManagerLost(ctx context.Context) (<-chan struct{}, error) {
	sig, err := s.sm.Watch(ctx, statemgr.TManagers, s.topology)
	if err != nil {
		return nil, err
	}
	lost := make(chan struct{})
	go func() {
		for range sig {
			if _, err := s.sm.Get(ctx, statemgr.TManagers, s.topology); errors.Is(err, statemgr.ErrNotFound) {
				close(lost)
				for range sig {
				}
				return
			}
		}
	}()
	return lost, nil
}

func locAddr(l *model.TManagerLocation) string {
	if l == nil {
		return ""
	}
	return net.JoinHostPort(l.GetHost(), strconv.Itoa(int(l.GetServerPort())))
}

// WatchTManager returns the tmanager's server address ("" when none) and a
// channel closed once the address changes.
func (s *smState) WatchTManager(ctx context.Context) (string, <-chan struct{}, error) {
	wctx, cancel := context.WithCancel(ctx)
	sig, err := s.sm.Watch(wctx, statemgr.TManagers, s.topology)
	if err != nil {
		cancel()
		return "", nil, err
	}
	read := func() string {
		l, err := statemgr.TManagerLocation(ctx, s.sm, s.topology)
		if err != nil {
			return ""
		}
		return locAddr(l)
	}
	first := read()
	changed := make(chan struct{})
	go func() {
		defer cancel()
		for range sig {
			if read() != first {
				close(changed)
				return
			}
		}
	}()
	return first, changed, nil
}

func (s *smState) WritePhysicalPlan(ctx context.Context, plan *simPlan, stmgrs []stmgrInfo, paused bool) error {
	if s.topo == nil {
		t, err := statemgr.Topology(ctx, s.sm, s.topology)
		if err != nil {
			return fmt.Errorf("read topology %s: %w", s.topology, err)
		}
		s.topo = t
	}
	b, err := proto.Marshal(physicalPlan(s.topo, plan, stmgrs, paused))
	if err != nil {
		return err
	}
	return s.sm.Replace(ctx, statemgr.PhysicalPlans, s.topology, b)
}

func (s *smState) DeletePhysicalPlan(ctx context.Context) error {
	return s.sm.Delete(ctx, statemgr.PhysicalPlans, s.topology)
}

func zkOptions(conn, root string) statemgr.ZKOptions {
	return statemgr.ZKOptions{Servers: strings.Split(conn, ","), Root: root, InitTree: true}
}
