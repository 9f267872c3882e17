package main

// The proc suite: restart latency, start and stop of 1,000 children, and the
// cost of supervising 1,000 idle children (issue 2).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"egret/proc"
)

func init() {
	register("proc", "process supervisor: restart latency, start/stop 1,000, idle 1,000", runProc)
	// As the restart-latency child: write "pid unix-ns" to the FIFO as the
	// first thing main's package does, then wait to be killed.
	if fifo := os.Getenv(stampEnv); fifo != "" {
		now := time.Now().UnixNano()
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			os.Exit(2)
		}
		fmt.Fprintf(f, "%d %d\n", os.Getpid(), now)
		f.Close()
		if addr := os.Getenv(httpEnv); addr != "" {
			serveHealth(addr)
		}
		time.Sleep(24 * time.Hour)
		os.Exit(0)
	}
}

const stampEnv = "EGRET_BENCH_STAMP"

func runProc(ctx context.Context, env *Env) ([]Row, error) {
	samples, children, idle := 250, 1000, 30*time.Second
	if env.Quick {
		samples, children, idle = 20, 100, 3*time.Second
	}
	var rows []Row
	r, err := restartLatency(ctx, env, samples)
	if err != nil {
		return nil, fmt.Errorf("restart latency: %w", err)
	}
	rows = append(rows, r...)
	r, err = startStop(ctx, env, children)
	if err != nil {
		return nil, fmt.Errorf("start/stop: %w", err)
	}
	rows = append(rows, r...)
	r, err = idleCost(ctx, env, children, idle)
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	return append(rows, r...), nil
}

// stampReader reads the children's stamps from a FIFO.
type stampReader struct {
	path  string
	f     *os.File
	lines chan [2]int64
}

func newStampReader(dir string) (*stampReader, error) {
	path := filepath.Join(dir, "stamps")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("mkfifo: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // RDWR: never EOF, open never blocks
	if err != nil {
		return nil, err
	}
	s := &stampReader{path: path, f: f, lines: make(chan [2]int64, 16)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var pid, ns int64
			if _, err := fmt.Sscan(sc.Text(), &pid, &ns); err == nil {
				s.lines <- [2]int64{pid, ns}
			}
		}
	}()
	return s, nil
}

func (s *stampReader) next(timeout time.Duration) ([2]int64, error) {
	select {
	case l, ok := <-s.lines:
		if !ok {
			return l, errors.New("stamp FIFO closed")
		}
		return l, nil
	case <-time.After(timeout):
		return [2]int64{}, fmt.Errorf("no stamp within %v", timeout)
	}
}

// measureRestarts kills the stamping child n times and returns the delays
// from each kill to the replacement's stamp.
func measureRestarts(st *stampReader, n int) ([]time.Duration, error) {
	cur, err := st.next(30 * time.Second)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for len(out) < n {
		time.Sleep(20 * time.Millisecond) // let the child settle, as a long-running one would
		killed := time.Now().UnixNano()
		if err := syscall.Kill(int(cur[0]), syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill %d: %w", cur[0], err)
		}
		next, err := st.next(10 * time.Second)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Duration(next[1]-killed))
		cur = next
	}
	return out, nil
}

func restartLatency(ctx context.Context, env *Env, n int) ([]Row, error) {
	dir, err := os.MkdirTemp(env.Tmp, "restart-")
	if err != nil {
		return nil, err
	}
	st, err := newStampReader(dir)
	if err != nil {
		return nil, err
	}
	defer st.f.Close()
	childEnv := append(os.Environ(), stampEnv+"="+st.path)

	// Floor: a shell loop re-running the same child.
	floorCmd := exec.Command("/bin/sh", "-c", `while :; do "$0"; done`, env.Self)
	floorCmd.Env = childEnv
	floorCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := floorCmd.Start(); err != nil {
		return nil, err
	}
	floor, err := measureRestarts(st, n)
	syscall.Kill(-floorCmd.Process.Pid, syscall.SIGKILL)
	floorCmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("shell loop: %w", err)
	}

	// egret supervise with backoff 0.
	conf := filepath.Join(dir, "restart.yaml")
	yaml := fmt.Sprintf(`log_dir: %s
processes:
  - name: stamp
    command: [%q]
    env: {%s: %q}
    restart: {policy: always, initial_backoff: 0s, max_backoff: 0s, jitter: 0}
`, filepath.Join(dir, "logs"), env.Self, stampEnv, st.path)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	sup := exec.Command(env.Egret, "supervise", "-q", conf)
	if err := sup.Start(); err != nil {
		return nil, err
	}
	got, err := measureRestarts(st, n)
	sup.Process.Signal(syscall.SIGTERM)
	werr := sup.Wait()
	if err != nil {
		return nil, fmt.Errorf("egret supervise: %w", err)
	}
	if werr != nil {
		return nil, fmt.Errorf("egret supervise exit: %w", werr)
	}
	fm, f90 := quantile(floor, 0.5), quantile(floor, 0.9)
	gm, g90 := quantile(got, 0.5), quantile(got, 0.9)
	return []Row{
		{Figure: fmt.Sprintf("restart latency median (SIGKILL → first stamp, %d samples)", n), Value: ms(gm), Floor: ms(fm) + " (sh loop)", Goal: "≤ floor + 1 ms", Met: met(gm <= fm+time.Millisecond)},
		{Figure: "restart latency p90", Value: ms(g90), Floor: ms(f90) + " (sh loop)", Goal: "≤ floor p90 + 5 ms", Met: met(g90 <= f90+5*time.Millisecond)},
	}, nil
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// startStop starts n `sleep` children with a bare loop (the floor) and with
// a proc.Supervisor, then stops the supervisor's.
func startStop(ctx context.Context, env *Env, n int) ([]Row, error) {
	dir, err := os.MkdirTemp(env.Tmp, "start-")
	if err != nil {
		return nil, err
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, err
	}
	floor, err := bareStart(dir, sleep, n)
	if err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}

	s := proc.New(proc.Options{LogDir: filepath.Join(dir, "egret")})
	events, cancel := s.Subscribe()
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	begin := time.Now()
	for i := range n {
		if err := s.Start(proc.Spec{Name: fmt.Sprintf("sleep-%d", i), Argv: []string{sleep, "100000"}}); err != nil {
			stopRun()
			<-done
			return nil, err
		}
	}
	for started := 0; started < n; {
		ev := <-events
		switch ev.Type {
		case proc.EventStarted:
			started++
		case proc.EventExited:
			stopRun()
			<-done
			return nil, fmt.Errorf("%s exited: %v %s", ev.Name, ev.Exit, ev.Reason)
		}
	}
	startTook := time.Since(begin)
	go func() {
		for range events { // keep reading so the queue stays short
		}
	}()
	begin = time.Now()
	stopRun()
	if err := <-done; err != nil {
		return nil, err
	}
	stopTook := time.Since(begin)
	return []Row{
		{Figure: fmt.Sprintf("start %d children (sleep) until all running", n), Value: secs(startTook), Floor: secs(floor) + " (bare Go loop)", Goal: "≤ 1.2 × floor", Met: met(float64(startTook) <= 1.2*float64(floor))},
		{Figure: fmt.Sprintf("stop %d children that exit on SIGTERM", n), Value: secs(stopTook), Goal: "≤ 1 s", Met: met(stopTook <= time.Second)},
	}, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// bareStart is the floor: the same per-child setup (a process group, two
// log files) and fork/exec, nothing else. It returns the time to start all.
func bareStart(dir, sleep string, n int) (time.Duration, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	env := os.Environ()
	pids := make([]int, 0, n)
	defer func() {
		for _, pid := range pids {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		for _, pid := range pids {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}()
	begin := time.Now()
	for i := range n {
		var files [2]*os.File
		for j, ext := range []string{".stdout", ".stderr"} {
			f, err := os.OpenFile(filepath.Join(dir, "bare-"+strconv.Itoa(i)+ext), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return 0, err
			}
			files[j] = f
		}
		pid, err := syscall.ForkExec(sleep, []string{sleep, "100000"}, &syscall.ProcAttr{Env: env, Files: []uintptr{devnull.Fd(), files[0].Fd(), files[1].Fd()}, Sys: &syscall.SysProcAttr{Setpgid: true}})
		files[0].Close()
		files[1].Close()
		if err != nil {
			return 0, err
		}
		pids = append(pids, pid)
	}
	return time.Since(begin), nil
}

// idleCost runs `egret supervise` with no children and then with n idle
// children, and reads the supervisor's wake-ups, CPU, RSS and threads from
// /proc over the window.
func idleCost(ctx context.Context, env *Env, n int, window time.Duration) ([]Row, error) {
	dir, err := os.MkdirTemp(env.Tmp, "idle-")
	if err != nil {
		return nil, err
	}
	base, err := idleRun(env, dir, 0, min(window, 5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("no children: %w", err)
	}
	full, err := idleRun(env, dir, n, window)
	if err != nil {
		return nil, fmt.Errorf("%d children: %w", n, err)
	}
	growth := float64(full.rss-base.rss) / (1 << 20)
	return []Row{
		{Figure: fmt.Sprintf("idle %d children for %v: wake-ups/s (all threads)", n, window), Value: fmt.Sprintf("%.2f", full.wakeups), Floor: fmt.Sprintf("%.2f (no children)", base.wakeups), Goal: "≤ 1 /s", Met: met(full.wakeups <= 1)},
		{Figure: "idle: supervisor CPU", Value: fmt.Sprintf("%.3f %%", full.cpu), Floor: fmt.Sprintf("%.3f %% (no children)", base.cpu), Goal: "≤ 0.5 % of a core", Met: met(full.cpu <= 0.5)},
		{Figure: "idle: supervisor RSS", Value: fmt.Sprintf("%.1f MB", float64(full.rss)/(1<<20)), Floor: fmt.Sprintf("%.1f MB (no children)", float64(base.rss)/(1<<20)), Goal: "growth ≤ 20 MB", Met: met(growth <= 20)},
		{Figure: "idle: supervisor OS threads", Value: strconv.Itoa(full.threads), Floor: strconv.Itoa(base.threads) + " (no children)", Goal: "does not grow with children", Met: met(full.threads <= base.threads+2)},
		{Figure: "idle: guardian wake-ups/s, RSS", Value: fmt.Sprintf("%.2f, %.1f MB", full.guardWakeups, float64(full.guardRSS)/(1<<20)), Floor: "-", Goal: "-"},
	}, nil
}

type idleFigures struct {
	wakeups, cpu float64
	rss          uint64
	threads      int
	guardWakeups float64
	guardRSS     uint64
}

func idleRun(env *Env, dir string, n int, window time.Duration) (idleFigures, error) {
	var fig idleFigures
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return fig, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log_dir: %s\nprocesses:\n", filepath.Join(dir, fmt.Sprintf("logs-%d", n)))
	if n == 0 {
		b.Reset()
		b.WriteString("processes: []\n")
	}
	for i := range n {
		fmt.Fprintf(&b, "  - {name: idle-%d, command: [%q, \"100000\"]}\n", i, sleep)
	}
	conf := filepath.Join(dir, fmt.Sprintf("idle-%d.yaml", n))
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return fig, err
	}
	cmd := exec.Command(env.Egret, "supervise", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fig, err
	}
	if err := cmd.Start(); err != nil {
		return fig, err
	}
	pid := cmd.Process.Pid
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stderr)
	for started := 0; started < n && sc.Scan(); {
		if strings.Contains(sc.Text(), " started ") {
			started++
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	time.Sleep(2 * time.Second) // settle: the guardian starts, the last pipes are polled
	guard := findGuardian(pid)
	w0, c0 := wakeups(pid), cpuTicks(pid)
	gw0 := wakeups(guard)
	time.Sleep(window)
	w1, c1 := wakeups(pid), cpuTicks(pid)
	gw1 := wakeups(guard)
	fig.wakeups = float64(w1-w0) / window.Seconds()
	fig.cpu = float64(c1-c0) / 100 / window.Seconds() * 100 // clock ticks at 100 Hz
	fig.rss = statusKB(pid, "VmRSS") * 1024
	fig.threads = int(statusKB(pid, "Threads"))
	if guard > 0 {
		fig.guardWakeups = float64(gw1-gw0) / window.Seconds()
		fig.guardRSS = statusKB(guard, "VmRSS") * 1024
	}
	return fig, nil
}

// wakeups sums the context switches of every thread of pid.
func wakeups(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "voluntary_ctxt_switches:") || strings.HasPrefix(l, "nonvoluntary_ctxt_switches:") {
				v, _ := strconv.ParseInt(strings.TrimSpace(l[strings.IndexByte(l, ':')+1:]), 10, 64)
				sum += v
			}
		}
	}
	return sum
}

func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func statusKB(pid int, key string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			f := strings.Fields(l[len(key)+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// findGuardian returns the pid of the supervisor's guardian child, or 0.
func findGuardian(sup int) int {
	// Children are listed per thread, and the spawner thread is not the main one.
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", sup))
	var kids []string
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			kids = append(kids, strings.Fields(string(b))...)
		}
	}
	for _, f := range kids {
		pid, _ := strconv.Atoi(f)
		if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.HasPrefix(string(cmd), "egret-proc-guardian") {
			return pid
		}
	}
	return 0
}
