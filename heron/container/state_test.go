package container

import (
	"testing"
	"time"
)

// testState is a real state manager seen by the tests.
type testState interface {
	conn() string
	root() string
	setTopology(t *testing.T, name string)
	setPlan(t *testing.T, topology string, p *Plan)
	waitPhysicalPlan(t *testing.T, topology string, d time.Duration, pred func(stmgrs []string) bool) []string
}
