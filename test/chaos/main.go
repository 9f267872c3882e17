// Command chaos is egret's chaos suite (`make chaos`): it runs real egret processes on
// loopback, injects faults (SIGKILLs, ZooKeeper outages, dropped agent streams, full
// disks, malformed inputs) and checks that egret recovers and loses nothing.
//
// Each scenario prints what it did and what it found, and ends with one line,
// `chaos: NAME: ok` or `chaos: NAME: FAILED: why`. The command exits non-zero when any
// scenario failed. Every process a scenario causes to exist is ended by pid or process
// group when the scenario ends, never by name. See docs/chaos.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// options are the suite's flags.
type options struct {
	only     map[string]bool
	keep     bool
	workDir  string
	stormFor time.Duration
	seed     int64
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	only := fs.String("only", "", "comma-separated scenario names to run (default: all)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	keep := fs.Bool("keep", false, "keep the work directory (logs, sandboxes) after the run")
	work := fs.String("work", "", "work directory (default: a new temporary directory)")
	storm := fs.Duration("storm", 60*time.Second, "how long the kill storm lasts")
	seed := fs.Int64("seed", time.Now().UnixNano(), "seed of the random choices (printed, to replay a run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *list {
		for _, sc := range scenarios() {
			fmt.Fprintf(out, "%-16s %s\n", sc.name, sc.about)
		}
		return nil
	}
	selected, err := selectScenarios(scenarios(), *only)
	if err != nil {
		return err
	}
	opts := options{keep: *keep, workDir: *work, stormFor: *storm, seed: *seed}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir := opts.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "egret-chaos-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	runID := newRunID()
	s := &suite{opts: opts, dir: dir, runID: runID, out: out}
	fmt.Fprintf(out, "chaos: run %s, seed %d, work directory %s\n", runID, opts.seed, dir)

	var failed []string
	for _, sc := range selected {
		if ctx.Err() != nil {
			failed = append(failed, sc.name+" (interrupted)")
			continue
		}
		if !s.runScenario(ctx, sc) {
			failed = append(failed, sc.name)
		}
	}
	s.close()
	if !opts.keep && len(failed) == 0 && opts.workDir == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(out, "chaos: logs and sandboxes kept in %s\n", dir)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d scenarios failed: %s", len(failed), len(selected), strings.Join(failed, ", "))
	}
	fmt.Fprintf(out, "chaos: all %d scenarios ok\n", len(selected))
	return nil
}

// selectScenarios picks the scenarios named in only (all when empty), in registry order;
// an unknown name is an error listing the known ones.
func selectScenarios(all []scenario, only string) ([]scenario, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	known := map[string]bool{}
	var names []string
	for _, sc := range all {
		known[sc.name] = true
		names = append(names, sc.name)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !known[n] {
			sort.Strings(names)
			return nil, fmt.Errorf("-only: unknown scenario %q (known: %s)", n, strings.Join(names, ", "))
		}
		want[n] = true
	}
	var out []scenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
		}
	}
	return out, nil
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
