package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// topo is one topology submitted to a local cluster through the egret command line,
// with its own HOME so its state, working directory and sandboxes stay inside the
// scenario's directory.
type topo struct {
	s       *scen
	cluster string // local or localzk
	name    string
	spec    string
	home    string
	props   []string // --config-property KEY=VALUE
}

// moduleRoot finds the directory holding egret's go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module egret\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the chaos suite from inside the egret module (no go.mod of module egret above the working directory)")
		}
		dir = parent
	}
}

// newTopo prepares the word count example for cluster, under the scenario's directory.
func (s *scen) newTopo(cluster string, props ...string) (*topo, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	spec := filepath.Join(root, "examples", "wordcount.yaml")
	if _, err := os.Stat(spec); err != nil {
		return nil, fmt.Errorf("the word count example: %w", err)
	}
	home := filepath.Join(s.dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	name, err := specName(spec)
	if err != nil {
		return nil, err
	}
	return &topo{s: s, cluster: cluster, name: name, spec: spec, home: home, props: props}, nil
}

// specName reads a topology spec's name.
func specName(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var spec struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil || spec.Name == "" {
		return "", fmt.Errorf("%s: no topology name (%v)", path, err)
	}
	return spec.Name, nil
}

// env is the environment of every egret command of this topology.
func (t *topo) env() []string {
	env := []string{"HOME=" + t.home, "EGRET_CACHE_DIR=" + filepath.Join(t.s.suite.dir, "cache")}
	if rel := os.Getenv("EGRET_SIM_RELEASE"); rel != "" {
		env = append(env, "EGRET_SIM_RELEASE="+rel)
	}
	return env
}

// egret runs one egret command of this topology to completion, with the topology's
// cluster configuration flags appended.
func (t *topo) egret(ctx context.Context, args ...string) (string, error) {
	bin, err := t.s.egret(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range t.props {
		args = append(args, "--config-property", p)
	}
	cmd, err := t.s.procs.command(ctx, "", bin, args...)
	if err != nil {
		return "", err
	}
	cmd.Env = append(cmd.Env, t.env()...)
	cmd.Dir = t.home
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("egret %s: %v: %s", strings.Join(args, " "), err, lastLine(string(out)))
	}
	return string(out), nil
}

// submit builds the example's package with egret topology build and submits it.
func (t *topo) submit(ctx context.Context) error {
	bin, err := t.s.egret(ctx)
	if err != nil {
		return err
	}
	pkgDir := filepath.Join(t.s.dir, "package")
	cmd, err := t.s.procs.command(ctx, "", bin, "topology", "build", "--output", pkgDir, "--cluster", t.cluster, t.spec)
	if err != nil {
		return err
	}
	cmd.Env = append(cmd.Env, t.env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("egret topology build: %v: %s", err, lastLine(string(out)))
	}
	start := time.Now()
	out, err := t.egret(ctx, "submit", t.cluster, filepath.Join(pkgDir, "topology.tar.gz"))
	if err != nil {
		return err
	}
	t.s.logf("submitted %s to %s in %v: %s", t.name, t.cluster, time.Since(start).Round(time.Millisecond), lastLine(out))
	return nil
}

func (t *topo) kill(ctx context.Context) error {
	start := time.Now()
	_, err := t.egret(ctx, "kill", t.cluster, t.name)
	if err == nil {
		t.s.logf("killed %s in %v", t.name, time.Since(start).Round(time.Millisecond))
	}
	return err
}

// status returns `egret status --json` decoded generically.
func (t *topo) status(ctx context.Context) (map[string]any, error) {
	out, err := t.egret(ctx, "status", t.cluster, t.name, "--json")
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("egret status --json: %v: %.200s", err, out)
	}
	return m, nil
}

// layout is the topology's processes as /proc shows them.
type layout struct {
	scheduler []procInfo
	executors []procInfo          // `egret heron-executor` processes
	daemons   map[int][]procInfo  // executor pid → its descendants
	argv      map[int]string      // pid → argv joined
	byShard   map[string][]string // executor's shard → sorted daemon argvs
}

// isExecutor and isScheduler classify egret processes by argv.
func isExecutor(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	if filepath.Base(argv[0]) == "heron-executor" {
		return true
	}
	return len(argv) > 1 && argv[1] == "heron-executor"
}

func isScheduler(argv []string) bool {
	return len(argv) > 1 && filepath.Base(argv[0]) == "egret" && argv[1] == "scheduler"
}

// snapshot reads the topology's processes from /proc.
func (t *topo) snapshot() layout {
	procs := allProcs()
	l := layout{daemons: map[int][]procInfo{}, argv: map[int]string{}, byShard: map[string][]string{}}
	for _, pid := range t.s.procs.ours() {
		p, ok := procs[pid]
		if !ok {
			continue
		}
		argv := cmdline(pid)
		l.argv[pid] = strings.Join(argv, " ")
		switch {
		case isScheduler(argv):
			l.scheduler = append(l.scheduler, p)
		case isExecutor(argv):
			l.executors = append(l.executors, p)
		}
	}
	for _, e := range l.executors {
		var names []string
		for _, d := range descendants(procs, e.PID) {
			if p, ok := procs[d]; ok && p.State != 'Z' {
				l.daemons[e.PID] = append(l.daemons[e.PID], p)
				a := strings.Join(cmdline(d), " ")
				l.argv[d] = a
				names = append(names, a)
			}
		}
		sort.Strings(names)
		l.byShard[shardOf(cmdline(e.PID))] = names
	}
	return l
}

// shardOf names an executor by its --shard flag (its whole argv when it has none).
func shardOf(argv []string) string {
	for i, a := range argv {
		if v, ok := strings.CutPrefix(a, "--shard="); ok {
			return "shard " + v
		}
		if a == "--shard" && i+1 < len(argv) {
			return "shard " + argv[i+1]
		}
	}
	return strings.Join(argv, " ")
}

// allDaemons lists every daemon of every executor.
func (l layout) allDaemons() []procInfo {
	var out []procInfo
	for _, e := range l.executors {
		out = append(out, l.daemons[e.PID]...)
	}
	return out
}

// missing describes what of want is not in l: executors and their daemons, by argv.
func (l layout) missing(want layout) string {
	var m []string
	for shard, daemons := range want.byShard {
		got, ok := l.byShard[shard]
		if !ok {
			m = append(m, "the executor of "+shortArgv(shard))
			continue
		}
		have := map[string]int{}
		for _, d := range got {
			have[d]++
		}
		for _, d := range daemons {
			if have[d] == 0 {
				m = append(m, "daemon "+shortArgv(d))
			} else {
				have[d]--
			}
		}
	}
	if len(want.scheduler) > 0 && len(l.scheduler) == 0 {
		m = append(m, "the scheduler daemon")
	}
	sort.Strings(m)
	return strings.Join(m, ", ")
}

// shortArgv shortens an argv for a report: the program and its first flags.
func shortArgv(a string) string {
	f := strings.Fields(a)
	if len(f) > 0 {
		f[0] = filepath.Base(f[0])
	}
	s := strings.Join(f, " ")
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return s
}

// waitFor calls check until it returns nil or the timeout passes; it returns the last
// error. Used only where no event exists to wait on (another program's state seen
// through /proc and its command line).
func waitFor(ctx context.Context, timeout, every time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v (%w)", err, ctx.Err())
		case <-time.After(every):
		}
	}
}
