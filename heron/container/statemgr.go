package container

import (
	"context"
	"errors"
)

// openPlanWatcher opens the state manager named by the flags.
func openPlanWatcher(ctx context.Context, f *Flags) (PlanWatcher, func(), error) {
	return nil, nil, errors.New("not yet wired")
}
