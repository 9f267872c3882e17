package main

// The local suite (issue 6): the word count on the local cluster with the
// simulated release: submit to physical plan, kill to no process, and an
// executor SIGKILLed to its daemons re-registered and the plan rewritten.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

func init() {
	register("local", "local scheduler: submit to physical plan, kill, executor SIGKILL (word count, 4 containers)", runLocal)
}

const localBackoff = 100 * time.Millisecond

type localBench struct {
	env  *Env
	home string
	spec string
	sim  string
}

func (b *localBench) egret(ctx context.Context, args ...string) error {
	args = append(args, "--config-property", "egret.scheduler.local.restart.backoff.initial="+localBackoff.String())
	cmd := exec.CommandContext(ctx, b.env.Egret, args...)
	cmd.Env = append(os.Environ(), "HOME="+b.home, "EGRET_SIM_RELEASE="+b.sim, "EGRET_CACHE_DIR="+filepath.Join(b.env.Tmp, "local-cache"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("egret %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *localBench) stateFile(dir string) string {
	return filepath.Join(b.home, ".herondata", "repository", "state", "local", dir, "wordcount")
}

func (b *localBench) workdir() (string, error) {
	matches, _ := filepath.Glob(filepath.Join(b.home, ".herondata", "topologies", "local", "*", "wordcount"))
	if len(matches) != 1 {
		return "", fmt.Errorf("no working directory of wordcount under %s", b.home)
	}
	return matches[0], nil
}

// await polls until cond holds: the plan lives in files other processes
// write, and the figure is the time until it does.
func localAwait(ctx context.Context, what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// procsUnder lists the processes whose working directory is inside dir.
func localProcsUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
				s := string(st)
				if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] != "Z" {
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

func runLocal(ctx context.Context, env *Env) ([]Row, error) {
	b := &localBench{env: env, home: filepath.Join(env.Tmp, "local-home"), spec: "examples/wordcount.yaml",
		sim: filepath.Join(filepath.Dir(env.Egret), "heron-core-sim.tar.gz")}
	if _, err := os.Stat(b.sim); err != nil {
		return nil, fmt.Errorf("%w (make sim-release builds it)", err)
	}
	if _, err := os.Stat(b.spec); err != nil {
		return nil, fmt.Errorf("%w (run from the repository root)", err)
	}
	samples := 5
	if env.Quick {
		samples = 1
	}
	var submit, restart, kill []time.Duration
	defer func() {
		// Whatever a failed sample left runs no longer.
		if wd, err := b.workdir(); err == nil {
			b.egret(context.Background(), "kill", "local", "wordcount")
			for _, pid := range localProcsUnder(wd) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	// A first run fills the fetcher's cache; the figures are for a warm cache.
	for i := -1; i < samples; i++ {
		t0 := time.Now()
		if err := b.egret(ctx, "submit", "local", b.spec); err != nil {
			return nil, err
		}
		if err := localAwait(ctx, "physical plan", time.Minute, func() bool { _, err := os.Stat(b.stateFile("pplans")); return err == nil }); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		wd, err := b.workdir()
		if err != nil {
			return nil, err
		}
		// SIGKILL container 1's executor: restarted after the backoff, its
		// daemons re-register and the topology manager rewrites the plan.
		var rec struct {
			Executors map[string]struct{ Pid int } `json:"executors"`
		}
		raw, err := os.ReadFile(filepath.Join(wd, "scheduler-state.json"))
		if err == nil {
			err = json.Unmarshal(raw, &rec)
		}
		if err != nil {
			return nil, fmt.Errorf("scheduler-state.json: %v", err)
		}
		oldPid := stmgrPid(b.stateFile("pplans"), "stmgr-1")
		victim := rec.Executors["1"].Pid
		t1 := time.Now()
		syscall.Kill(-victim, syscall.SIGKILL)
		// Rewritten: the plan names a new stream manager 1 (and all three).
		err = localAwait(ctx, "plan rewritten", time.Minute, func() bool {
			p := stmgrPid(b.stateFile("pplans"), "stmgr-1")
			return p != 0 && p != oldPid && stmgrCount(b.stateFile("pplans")) == 3
		})
		if err != nil {
			return nil, err
		}
		r := time.Since(t1)
		t2 := time.Now()
		if err := b.egret(ctx, "kill", "local", "wordcount"); err != nil {
			return nil, err
		}
		if err := localAwait(ctx, "no process", time.Minute, func() bool { return len(localProcsUnder(wd)) == 0 }); err != nil {
			return nil, err
		}
		k := time.Since(t2)
		if i >= 0 {
			submit, restart, kill = append(submit, d), append(restart, r), append(kill, k)
		}
		fmt.Fprintf(env.Log, "local: sample %d: submit→pplan %v, executor SIGKILL→pplan %v, kill→no process %v\n", i, d.Round(time.Millisecond), r.Round(time.Millisecond), k.Round(time.Millisecond))
	}
	ms, mr, mk := median(submit), median(restart), median(kill)
	return []Row{
		{Figure: "local: submit word count (4 containers) to physical plan (median)", Value: ms.Round(time.Millisecond).String(),
			Floor: "—", Goal: "≤ 2s", Met: met(ms <= 2*time.Second)},
		{Figure: "local: kill to no process left (median)", Value: mk.Round(time.Millisecond).String(),
			Floor: "Heron: SIGTERM, no wait", Goal: "≤ 1s", Met: met(mk <= time.Second)},
		{Figure: fmt.Sprintf("local: executor SIGKILL to plan rewritten (median, backoff %v)", localBackoff), Value: mr.Round(time.Millisecond).String(),
			Floor: "Heron: new ports, tmanager 10s", Goal: "≤ 1s + backoff", Met: met(mr <= time.Second+localBackoff)},
	}, nil
}

func readPplan(path string) *model.PhysicalPlan {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pp := &model.PhysicalPlan{}
	if proto.Unmarshal(b, pp) != nil {
		return nil
	}
	return pp
}

// stmgrPid is the pid a physical plan records for a stream manager (0: none).
func stmgrPid(path, id string) int32 {
	for _, s := range readPplan(path).GetStmgrs() {
		if s.GetId() == id {
			return s.GetPid()
		}
	}
	return 0
}

func stmgrCount(path string) int { return len(readPplan(path).GetStmgrs()) }
