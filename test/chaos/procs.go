package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tracker accounts for every process one scenario causes to exist: the ones it starts
// itself and everything they start in turn, including daemons that detach on purpose.
// Each process the suite starts carries the environment entry marker, which its
// descendants inherit; a process that scrubs its environment is still found by its
// working directory under dir or by descent from a marked process.
type tracker struct {
	marker string // "EGRET_CHAOS_RUN=<run>-<scenario>"
	dir    string

	mu      sync.Mutex
	started []*exec.Cmd
	files   []*os.File // log files handed to started commands
}

func newTracker(marker, dir string) *tracker {
	return &tracker{marker: marker, dir: dir}
}

// command returns a command that runs in its own process group with the marker in its
// environment, its output appended to logPath. The tracker ends it at clean-up.
func (t *tracker) command(ctx context.Context, logPath string, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), t.marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancel, the whole group goes, not only the leader.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		t.mu.Lock()
		t.files = append(t.files, f)
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.started = append(t.started, cmd)
	t.mu.Unlock()
	return cmd, nil
}

// run runs a command to completion and returns its combined output.
func (t *tracker) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd, err := t.command(ctx, "", name, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ours returns the live processes belonging to this tracker, from one snapshot of the
// process table, the suite itself excluded.
func (t *tracker) ours() []int {
	procs := allProcs()
	self := os.Getpid()
	set := map[int]bool{}
	for pid := range procs {
		if pid == self {
			continue
		}
		if hasEnv(pid, t.marker) || (t.dir != "" && cwdUnder(pid, t.dir)) {
			set[pid] = true
		}
	}
	t.mu.Lock()
	for _, c := range t.started {
		if c.Process != nil && c.ProcessState == nil {
			if _, ok := procs[c.Process.Pid]; ok {
				set[c.Process.Pid] = true
			}
		}
	}
	t.mu.Unlock()
	for pid := range set {
		for _, d := range descendants(procs, pid) {
			set[d] = true
		}
	}
	var out []int
	for pid := range set {
		if procs[pid].State != 'Z' {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// cleanup kills whatever is left: first the process groups the tracker started, then
// every remaining process of ours by pid. It returns the descriptions of the processes
// that were still alive when it began, so a scenario can report them as leaks.
func (t *tracker) cleanup() []string {
	left := t.ours()
	var desc []string
	for _, pid := range left {
		desc = append(desc, describe(pid))
	}
	t.mu.Lock()
	for _, c := range t.started {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}
	t.mu.Unlock()
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range left {
		_ = waitGone(pid, 5*time.Second)
	}
	for _, f := range t.files {
		f.Close()
	}
	t.files = nil
	// A daemon killed mid-fork may have left a child behind; one more pass.
	for _, pid := range t.ours() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = waitGone(pid, 5*time.Second)
	}
	return desc
}

// waitGone waits until pid has exited, through a pidfd, which works for processes
// that are not the suite's children. A zombie counts as gone: its reaping is its
// parent's business.
func waitGone(pid int, timeout time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return fmt.Errorf("pid %d still alive after %v", pid, timeout)
		}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll pidfd %d: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
	}
}

// killPid sends SIGKILL to one process after checking it is still the process seen
// (same start time), so a reused pid is never hit.
func killPid(p procInfo) error {
	now, err := readProc(p.PID)
	if err != nil || now.StartTime != p.StartTime {
		return fmt.Errorf("pid %d (%s) already gone", p.PID, p.Comm)
	}
	return syscall.Kill(p.PID, syscall.SIGKILL)
}

// psTree prints the processes of a list, one a line, for reports.
func psTree(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		fmt.Fprintf(&b, "\n    %s", describe(pid))
	}
	return b.String()
}

// bg is a command running in the background; done closes once it has been reaped.
type bg struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// start starts a command in the background and reaps it when it exits.
func (t *tracker) start(ctx context.Context, logPath, name string, args ...string) (*bg, error) {
	cmd, err := t.command(ctx, logPath, name, args...)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b := &bg{cmd: cmd, done: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		close(b.done)
	}()
	return b, nil
}
