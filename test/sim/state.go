package main

import (
	"context"
	"strconv"
)

type simInstance struct {
	Component string
	TaskID    int
	Index     int
}

type simContainer struct {
	ID        int
	Instances []simInstance
}

type simPlan struct {
	ID         string
	Containers []simContainer
}

func (p *simPlan) stmgrIDs() map[string]bool {
	m := map[string]bool{}
	for _, c := range p.Containers {
		m["stmgr-"+itoa(c.ID)] = true
	}
	return m
}

// state is what the simulated tmanager and stream managers need of Heron's state tree.
type state interface {
	WatchPackingPlan(ctx context.Context) (*simPlan, <-chan struct{}, error)
	InitiallyPaused(ctx context.Context) bool
	PublishTManager(ctx context.Context, host string, server, controller, stats int) error
	WatchTManagerLost(ctx context.Context) (<-chan struct{}, error)
	WatchTManager(ctx context.Context) (addr string, changed <-chan struct{}, err error)
	WritePhysicalPlan(ctx context.Context, plan *simPlan, stmgrs []stmgrInfo, paused bool) error
	DeletePhysicalPlan(ctx context.Context) error
	Close() error
}

func itoa(n int) string { return strconv.Itoa(n) }
