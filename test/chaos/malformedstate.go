package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func init() {
	register(scenario{order: 40, name: "malformed-state", timeout: 4 * time.Minute, run: malformedState,
		about: "garbage written over a running local topology's packing plan, locations and physical plan in the state manager: refused with a clear error, nothing restarted, the topology still manageable"})
}

// stateNode finds the file of one node kind (packingplans, tmanagers, ...) for the
// topology in the local state manager's tree under home.
func stateNode(home, kind, topology string) (string, error) {
	var found string
	err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return nil
		}
		if !d.IsDir() && d.Name() == topology && filepath.Base(filepath.Dir(p)) == kind {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", fmt.Errorf("no %s/%s node in the local state tree under %s", kind, topology, home)
	}
	return found, nil
}

// unchanged reports which processes of l have gone or been replaced.
func unchanged(l layout) []string {
	var gone []string
	for _, p := range append(l.egretProcs(), l.allDaemons()...) {
		if now, err := readProc(p.PID); err != nil || now.StartTime != p.StartTime || now.State == 'Z' {
			gone = append(gone, shortArgv(l.argv[p.PID]))
		}
	}
	return gone
}

// logsMention reports whether any executor or scheduler log under home, appended since
// sizes were taken, mentions one of words.
func logsMention(home string, since map[string]int64, words ...string) (string, bool) {
	var hit string
	_ = filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || hit != "" {
			return nil
		}
		n := d.Name()
		if !strings.HasSuffix(n, ".log") && !strings.HasSuffix(n, ".stdout") && !strings.HasSuffix(n, ".stderr") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || int64(len(b)) <= since[p] {
			return nil
		}
		for _, line := range strings.Split(string(b[since[p]:]), "\n") {
			l := strings.ToLower(line)
			for _, w := range words {
				if strings.Contains(l, strings.ToLower(w)) {
					hit = filepath.Base(p) + ": " + strings.TrimSpace(line)
					return fs.SkipAll
				}
			}
		}
		return nil
	})
	return hit, hit != ""
}

// logSizes records the size of every log under home.
func logSizes(home string) map[string]int64 {
	out := map[string]int64{}
	_ = filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				out[p] = fi.Size()
			}
		}
		return nil
	})
	return out
}

func malformedState(ctx context.Context, s *scen) error {
	t, err := s.newTopo("local")
	if err != nil {
		return err
	}
	if err := t.submit(ctx); err != nil {
		return err
	}
	defer t.killAndCheck(ctx)
	before, err := t.waitUp(ctx, nil)
	if err != nil {
		return fmt.Errorf("topology not up: %v", err)
	}
	s.logf("up: %d executors, %d daemons", len(before.executors), len(before.allDaemons()))

	// 1. The packing plan: the executors watch it, so garbage reaches all of them at
	// once. They must refuse it and keep running what they run.
	pp, err := stateNode(t.home, "packingplans", t.name)
	if err != nil {
		return err
	}
	orig, err := os.ReadFile(pp)
	if err != nil {
		return err
	}
	for _, bad := range []struct {
		what, body string
		decodes    bool // still a plan, though a smaller one: applied as a change
	}{
		{"random bytes", garbage, false},
		{"a truncated packing plan", string(orig[:len(orig)/2]), true},
		{"an empty file", "", false},
	} {
		sizes := logSizes(t.home)
		if err := os.WriteFile(pp, []byte(bad.body), 0o644); err != nil {
			return err
		}
		// Nothing should happen, so there is no event to await: watch for a while.
		var hit string
		_ = waitFor(ctx, 3*time.Second, 200*time.Millisecond, func() error {
			if h, ok := logsMention(t.home, sizes, "packing plan", "packingplan", "packing_plan"); ok {
				hit = h
			}
			return fmt.Errorf("keep watching")
		})
		// Heron's topology manager exits whenever its packing-plan node changes, and
		// the simulated one does the same: its restart is by design.
		var gone []string
		for _, g := range unchanged(before) {
			if !strings.Contains(g, "heron-tmanager") {
				gone = append(gone, g)
			}
		}
		if len(gone) > 0 && bad.decodes {
			// Heron's format has no checksum: a cut that still decodes is a plan.
			s.logf("packing plan replaced by %s, which still decodes: applied as a plan change (%d processes replaced)", bad.what, len(gone))
		} else if len(gone) > 0 {
			s.failf("packing plan replaced by %s: processes stopped or restarted: %s", bad.what, strings.Join(gone, ", "))
		} else if hit == "" {
			s.logf("packing plan replaced by %s: nothing restarted (the refusal is silent: no log line says so)", bad.what)
		} else {
			s.logf("packing plan replaced by %s: nothing restarted; logged %q", bad.what, hit)
		}
	}
	if err := os.WriteFile(pp, orig, 0o644); err != nil {
		return err
	}
	if _, err := t.waitUp(ctx, &before); err != nil {
		s.failf("with the packing plan restored: %v", err)
	}

	// 2. The physical plan and the topology manager's location: the commands that
	// read them must answer with a clear error or a degraded status, never crash.
	for _, kind := range []string{"pplans", "tmanagers", "executionstate"} {
		p, err := stateNode(t.home, kind, t.name)
		if err != nil {
			s.logf("%v (skipped)", err)
			continue
		}
		orig, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(garbage), 0o644); err != nil {
			return err
		}
		for _, args := range [][]string{{"status", t.cluster, t.name}, {"deactivate", t.cluster, t.name}} {
			out, err := t.egret(ctx, args...)
			switch {
			case strings.Contains(out, "panic:") || strings.Contains(out, "goroutine "):
				s.failf("%s garbled: egret %s crashed: %.300s", kind, args[0], out)
			case err != nil:
				s.logf("%s garbled: egret %s refused: %s", kind, args[0], lastLine(out))
			default:
				s.logf("%s garbled: egret %s answered: %s", kind, args[0], lastLine(out))
			}
		}
		// The owner may have rewritten it already; put it back only if still garbage.
		if b, err := os.ReadFile(p); err == nil && string(b) == garbage {
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				return err
			}
		}
		_, _ = t.egret(ctx, "activate", t.cluster, t.name)
	}
	if _, err := t.waitUp(ctx, &before); err != nil {
		s.failf("with the state restored: %v", err)
	}
	return nil
}
