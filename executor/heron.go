package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/fetcher"
	"egret/heron/container"
)

// Fetcher puts one artifact of a task into dir (the task's directory), verifying its
// checksum; it is the executor's view of the fetcher.
type Fetcher interface {
	Fetch(ctx context.Context, u TaskURI, dir string) error
}

// heronTask runs one Heron container described by TaskData, in-process, as
// `egret heron-executor` does.
type heronTask struct {
	data    *TaskData
	fetcher Fetcher
}

func (h *heronTask) run(ctx context.Context, tc *taskControl) outcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := func(format string, args ...any) outcome {
		return outcome{state: mesos.TASK_FAILED, message: fmt.Sprintf(format, args...)}
	}
	invalid := func(format string, args ...any) outcome {
		return outcome{state: mesos.TASK_FAILED, reason: mesos.REASON_TASK_INVALID.Enum(), message: fmt.Sprintf(format, args...)}
	}
	if err := os.MkdirAll(tc.Dir, 0o755); err != nil {
		return failed("task directory: %v", err)
	}
	flags, err := container.ParseFlags(h.data.ExecutorFlags)
	if err != nil {
		return invalid("task data executor_flags: %v", err)
	}
	if flags.Shard != h.data.Shard || flags.TopologyName != h.data.Topology {
		return invalid("task data: shard %d of %q, but executor_flags say shard %d of %q",
			h.data.Shard, h.data.Topology, flags.Shard, flags.TopologyName)
	}

	// A kill during the fetch stops it; the task is then KILLED.
	fetchDone := make(chan struct{})
	go func() {
		select {
		case <-tc.Kills():
			cancel()
		case <-fetchDone:
		}
	}()
	for _, u := range h.data.URIs {
		if h.fetcher == nil {
			close(fetchDone)
			return failed("fetch %s: this executor has no fetcher", u.URI)
		}
		if err := h.fetcher.Fetch(ctx, u, tc.Dir); err != nil {
			close(fetchDone)
			if _, killed := tc.KillDeadline(); killed {
				return outcome{state: mesos.TASK_KILLED, message: "killed while fetching " + u.URI}
			}
			return failed("fetch %s: %v", u.URI, err)
		}
	}
	close(fetchDone)
	if _, killed := tc.KillDeadline(); killed {
		return outcome{state: mesos.TASK_KILLED, message: "killed before the container started"}
	}

	var (
		mu      sync.Mutex
		running bool
		healthy *bool
	)
	onStatus := func(s container.StatusFile) {
		up, health := containerUp(s)
		mu.Lock()
		defer mu.Unlock()
		if !running {
			if up && health != unhealthyNow {
				running = true
				tc.Running(fmt.Sprintf("%d Heron processes running", len(s.Processes)))
			}
			return
		}
		if health == unknownHealth {
			return
		}
		h := health == healthyNow
		if healthy == nil || *healthy != h {
			healthy = &h
			tc.Health(h, "")
		}
	}
	env := append(append([]string(nil), tc.Env()...), "MESOS_TASK_ID="+tc.ID())
	ct, err := container.New(container.Options{Flags: flags, Dir: tc.Dir, Env: env, OnStatus: onStatus})
	if err != nil {
		return failed("heron container: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- ct.Run(runCtx) }()

	force := stoppedTimer()
	defer force.Stop()
	killing := false
	for {
		select {
		case err := <-done:
			if killing {
				return outcome{state: mesos.TASK_KILLED, message: "Heron container stopped"}
			}
			if err != nil {
				return failed("heron container: %v", err)
			}
			return outcome{state: mesos.TASK_FINISHED, message: "Heron container stopped"}
		case <-tc.Kills():
			deadline, _ := tc.KillDeadline()
			if !killing {
				killing = true
				stop() // the container stops its daemons: stop signal, then SIGKILL after its grace
			}
			force.Reset(time.Until(deadline))
		case <-force.C:
			// The kill's grace is over before the container's own: force every daemon.
			for _, p := range ct.Status().Processes {
				if p.PID > 0 && p.State != "exited" && p.State != "stopped" {
					if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
						tc.Logf("SIGKILL %s (pid %d): %v", p.Name, p.PID, err)
					}
				}
			}
		}
	}
}

type healthNow int

const (
	unknownHealth healthNow = iota
	healthyNow
	unhealthyNow
)

// containerUp says whether a container's daemons are all up, and their health: unhealthy
// if any daemon is, healthy if every daemon with a result is, unknown without results.
func containerUp(s container.StatusFile) (bool, healthNow) {
	if s.State != "running" || len(s.Processes) == 0 {
		return false, unknownHealth
	}
	up := true
	healthy := 0
	for _, p := range s.Processes {
		if p.State != "running" {
			up = false
		}
		switch p.Health {
		case "unhealthy":
			return up, unhealthyNow
		case "healthy":
			healthy++
		}
	}
	if healthy > 0 {
		return up, healthyNow
	}
	return up, unknownHealth
}

// cacheFetcher is the executor's Fetcher on egret's fetcher, with the host's cache.
type cacheFetcher struct{ f *fetcher.Fetcher }

// NewFetcher returns the default Fetcher: egret's fetcher with the cache in cacheDir
// ("" fetches without a cache).
func NewFetcher(cacheDir string) Fetcher {
	return cacheFetcher{f: &fetcher.Fetcher{CacheDir: cacheDir}}
}

func (c cacheFetcher) Fetch(ctx context.Context, u TaskURI, dir string) error {
	_, err := c.f.Fetch(ctx, fetcher.Request{
		URI: u.URI, Checksum: u.Checksum, Dest: dir, Extract: u.Extract,
		Executable: u.Executable, OutputFile: u.OutputFile, Cache: u.Cache,
	})
	return err
}
