package localsched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// Kill stops every container and removes the topology's state. It works even
// when parts are already gone: no scheduler (its executors are stopped
// here), no packing plan, no topology node.
func (c *Client) Kill(ctx context.Context, topology string) error {
	s, st, err := c.open(ctx, topology)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkExists(ctx, st, s, topology); err != nil {
		if t, _ := st.Topology(ctx, topology); t != nil {
			return err // it exists, under another role or environment
		}
		c.progress("warning: %v; removing whatever is left of it", err)
	}
	wd := workdir(s.WorkingDirectory)
	start := time.Now()
	killed := false
	if daemonRunning(wd) {
		if ep := schedulerEndpoint(ctx, st, topology); ep != "" {
			c.progress("stopping the containers of %s", topology)
			req := &model.KillTopologyRequest{TopologyName: proto.String(topology)}
			if err := postScheduler(ctx, ep, "kill", req); err != nil {
				c.progress("warning: the scheduler did not kill %s (%v); stopping its processes directly", topology, err)
			} else {
				killed = true
			}
		}
	}
	if err := stopLeftovers(ctx, wd, s.KillGrace, !killed); err != nil {
		return fmt.Errorf("kill %s: %w", topology, err)
	}
	if err := st.DeleteAll(ctx, topology); err != nil {
		return fmt.Errorf("kill %s: remove its state: %w", topology, err)
	}
	c.verbose("killed in %v", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(c.opts.Out, "Topology %s killed\n", topology)
	return nil
}

// stopLeftovers makes sure nothing of the topology runs: the daemon (when it
// did not answer), the recorded executors and any process whose working
// directory is inside the topology's working directory. Each is asked with
// SIGTERM, then killed after grace.
func stopLeftovers(ctx context.Context, wd workdir, grace time.Duration, withDaemon bool) error {
	rec, _ := readPersisted(wd.stateFile())
	type target struct {
		pid   int
		start uint64
		group bool
	}
	var targets []target
	if withDaemon && rec.SchedulerPid > 0 && daemonRunning(wd) {
		if st, err := startTime(rec.SchedulerPid); err == nil {
			targets = append(targets, target{rec.SchedulerPid, st, false})
		}
	}
	for _, r := range rec.Executors {
		if alive(r.Pid, r.StartTime) {
			targets = append(targets, target{r.Pid, r.StartTime, true})
		}
	}
	for _, pid := range processesUnder(string(wd)) {
		if st, err := startTime(pid); err == nil {
			targets = append(targets, target{pid, st, false})
		}
	}
	if len(targets) == 0 {
		os.Remove(wd.stateFile())
		return nil
	}
	signal := func(sig syscall.Signal) {
		for _, t := range targets {
			if !alive(t.pid, t.start) {
				continue
			}
			if t.group {
				killGroup(t.pid, sig)
			} else {
				syscall.Kill(t.pid, sig)
			}
		}
	}
	signal(syscall.SIGTERM)
	deadline, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	for _, t := range targets {
		waitExit(deadline, t.pid)
	}
	signal(syscall.SIGKILL)
	final, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	for _, t := range targets {
		waitExit(final, t.pid)
	}
	// A second sweep catches what the first generation started meanwhile.
	if rest := processesUnder(string(wd)); len(rest) > 0 {
		for _, pid := range rest {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range rest {
			waitExit(final, pid)
		}
		if rest := processesUnder(string(wd)); len(rest) > 0 {
			return fmt.Errorf("processes %v still run in %s", rest, wd)
		}
	}
	os.Remove(wd.stateFile())
	return nil
}

// processesUnder lists the processes (other than this one) whose working
// directory is dir or inside it: what a topology's containers run.
func processesUnder(dir string) []int {
	dir = filepath.Clean(dir)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			if st, err := startTime(pid); err == nil && alive(pid, st) {
				out = append(out, pid)
			}
		}
	}
	return out
}
