package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"
)

// scenario is one fault and what must hold after it.
type scenario struct {
	order   int // position in a full run: cheap, independent scenarios first
	name    string
	about   string
	timeout time.Duration
	run     func(ctx context.Context, s *scen) error
}

// suite holds what scenarios share: the work directory and the built binaries.
type suite struct {
	opts  options
	dir   string
	runID string
	out   io.Writer

	mu       sync.Mutex
	egretBin string
	egretErr error
}

// scen is one scenario's run: its directory, its processes, its findings.
type scen struct {
	*suite
	name     string
	dir      string
	procs    *tracker
	rand     *rand.Rand
	findings []string
	// exempt marks processes the scenario runs for itself (its ZooKeeper), which
	// outlive the topology on purpose.
	exempt func(pid int) bool
}

// logf prints what the scenario did or saw.
func (s *scen) logf(format string, args ...any) {
	fmt.Fprintf(s.out, "chaos: %s: %s\n", s.name, fmt.Sprintf(format, args...))
}

// failf records a finding that makes the scenario fail, and lets it go on.
func (s *scen) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.findings = append(s.findings, msg)
	fmt.Fprintf(s.out, "chaos: %s: FINDING: %s\n", s.name, msg)
}

// runScenario runs one scenario within its time bound, cleans up after it and prints
// its verdict line. It reports whether the scenario passed.
func (su *suite) runScenario(ctx context.Context, sc scenario) (ok bool) {
	dir := filepath.Join(su.dir, sc.name)
	s := &scen{suite: su, name: sc.name, dir: dir,
		procs: newTracker(fmt.Sprintf("EGRET_CHAOS_RUN=%s-%s", su.runID, sc.name), dir),
		rand:  rand.New(rand.NewSource(su.opts.seed))}
	start := time.Now()
	fmt.Fprintf(su.out, "chaos: %s: start: %s\n", sc.name, sc.about)
	var err error
	if err = os.MkdirAll(dir, 0o755); err == nil {
		timeout := sc.timeout
		if timeout == 0 {
			timeout = 2 * time.Minute
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			err = sc.run(sctx, s)
		}()
		cancel()
	}
	if left := s.procs.cleanup(); len(left) > 0 {
		s.failf("%d processes still running after the scenario ended (killed now):\n    %s", len(left), strings.Join(left, "\n    "))
	}
	if err != nil {
		s.findings = append(s.findings, err.Error())
	}
	elapsed := time.Since(start).Round(100 * time.Millisecond)
	if len(s.findings) == 0 {
		fmt.Fprintf(su.out, "chaos: %s: ok (%v)\n", sc.name, elapsed)
		return true
	}
	why := strings.Join(s.findings, "; ")
	why = strings.ReplaceAll(why, "\n", " ")
	if len(why) > 600 {
		why = why[:600] + "…"
	}
	fmt.Fprintf(su.out, "chaos: %s: FAILED: %s\n", sc.name, why)
	return false
}

func (su *suite) close() {}

// egret returns the path of the egret binary: $EGRET_BIN when set (make chaos sets it),
// otherwise one built from this module into the work directory, once.
func (su *suite) egret(ctx context.Context) (string, error) {
	su.mu.Lock()
	defer su.mu.Unlock()
	if su.egretBin != "" || su.egretErr != nil {
		return su.egretBin, su.egretErr
	}
	if p := os.Getenv("EGRET_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			su.egretErr = fmt.Errorf("$EGRET_BIN: %w", err)
			return "", su.egretErr
		}
		su.egretBin = p
		return p, nil
	}
	bin := filepath.Join(su.dir, "bin", "egret")
	fmt.Fprintf(su.out, "chaos: building %s\n", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "egret/cmd/egret")
	if out, err := cmd.CombinedOutput(); err != nil {
		su.egretErr = fmt.Errorf("go build egret: %v\n%s", err, out)
		return "", su.egretErr
	}
	su.egretBin = bin
	return bin, nil
}

// scenarios is the registry, in the order `make chaos` runs them: cheap ones first.
func scenarios() []scenario {
	out := append([]scenario(nil), registry...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// registry is filled by each scenario's file.
var registry []scenario

func register(sc scenario) { registry = append(registry, sc) }
