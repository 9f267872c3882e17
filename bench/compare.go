package main

// -compare (make bench-compare, issue 9): egret supervise beside supervisord
// and s6 on the same workloads in the same run, alternating between tools;
// the table goes to stdout and, with -results, into a Markdown file with the
// machine, the date and the versions.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const httpEnv = "EGRET_BENCH_HTTP"

// serveHealth runs in the child started with httpEnv: it answers GETs.
func serveHealth(addr string) {
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

// peer is one supervisor under comparison.
type peer struct {
	name string
	// launch starts the supervisor for svcs in dir with extra environment.
	launch func(env *Env, dir string, svcs []service, extraEnv []string) (*exec.Cmd, error)
	// stopSignal ends it (and its services).
	stopSignal syscall.Signal
	// own reports whether a process (by argv0 base) belongs to the supervisor.
	own func(argv0 string) bool
}

type service struct {
	name string
	argv []string
}

var peers = []peer{
	{name: "egret", launch: launchEgret, stopSignal: syscall.SIGTERM, own: func(a string) bool { return a == "egret-proc-guardian" }},
	{name: "supervisord", launch: launchSupervisord, stopSignal: syscall.SIGTERM, own: func(string) bool { return false }},
	{name: "s6", launch: launchS6, stopSignal: syscall.SIGTERM, own: func(a string) bool { return a == "s6-supervise" }},
}

func launchEgret(env *Env, dir string, svcs []service, extra []string) (*exec.Cmd, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "log_dir: %s\nprocesses:\n", filepath.Join(dir, "logs"))
	for _, s := range svcs {
		q := make([]string, len(s.argv))
		for i, a := range s.argv {
			q[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&b, "  - {name: %s, command: [%s], restart: {policy: always, initial_backoff: 0s, max_backoff: 0s, jitter: 0}}\n", s.name, strings.Join(q, ", "))
	}
	conf := filepath.Join(dir, "egret.yaml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(env.Egret, "supervise", "-q", conf)
	cmd.Env = append(os.Environ(), extra...)
	return cmd, cmd.Start()
}

func launchSupervisord(env *Env, dir string, svcs []service, extra []string) (*exec.Cmd, error) {
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[supervisord]\nnodaemon=true\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s\nminfds=16384\nloglevel=warn\n", dir, dir, logs)
	for _, s := range svcs {
		// The fastest restart supervisord offers: no start period, unlimited retries.
		fmt.Fprintf(&b, "\n[program:%s]\ncommand=%s\nautorestart=true\nstartsecs=0\nstartretries=1000000\nstdout_logfile=%s/%s.out\nstderr_logfile=%s/%s.err\n",
			s.name, strings.Join(s.argv, " "), logs, s.name, logs, s.name)
	}
	conf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("supervisord", "-n", "-c", conf)
	cmd.Env = append(os.Environ(), extra...)
	return cmd, cmd.Start()
}

func launchS6(env *Env, dir string, svcs []service, extra []string) (*exec.Cmd, error) {
	scan := filepath.Join(dir, "scan")
	for _, s := range svcs {
		sd := filepath.Join(scan, s.name)
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return nil, err
		}
		run := filepath.Join(sd, "run")
		if len(s.argv) == 1 {
			// The binary itself as ./run: no shell in between.
			if err := os.Symlink(s.argv[0], run); err != nil {
				return nil, err
			}
			continue
		}
		script := "#!/bin/sh\nexec " + strings.Join(s.argv, " ") + "\n"
		if err := os.WriteFile(run, []byte(script), 0o755); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("s6-svscan", "-c", strconv.Itoa(len(svcs)+100), scan)
	cmd.Env = append(os.Environ(), extra...)
	return cmd, cmd.Start()
}

// stopPeer signals the supervisor, waits for it, and SIGKILLs by pid any
// process of its tree still alive (so a run never leaves anything behind).
func stopPeer(p peer, cmd *exec.Cmd) {
	tree := descendants(cmd.Process.Pid)
	cmd.Process.Signal(p.stopSignal)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	for _, pid := range tree {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// procTable reads pid → (ppid, argv) for every process.
func procTable() map[int]struct {
	ppid int
	argv []string
} {
	out := map[int]struct {
		ppid int
		argv []string
	}{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out[pid] = struct {
			ppid int
			argv []string
		}{ppid, strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")}
	}
	return out
}

func descendants(root int) []int {
	t := procTable()
	kids := map[int][]int{}
	for pid, p := range t {
		kids[p.ppid] = append(kids[p.ppid], pid)
	}
	var out []int
	var walk func(int)
	walk = func(pid int) {
		for _, k := range kids[pid] {
			out = append(out, k)
			walk(k)
		}
	}
	walk(root)
	return out
}

// supervisorPids is the supervisor and its own helper processes (not the
// supervised children).
func supervisorPids(p peer, root int) []int {
	t := procTable()
	pids := []int{root}
	for _, pid := range descendants(root) {
		if a := t[pid].argv; len(a) > 0 && p.own(filepath.Base(a[0])) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// countMarked counts live processes whose command line contains marker.
func countMarked(marker string) int {
	n := 0
	for _, p := range procTable() {
		if strings.Contains(strings.Join(p.argv, " "), marker) {
			n++
		}
	}
	return n
}

// waitCount polls (no event exists for other supervisors' children) until
// cond holds, returning the time it took.
func waitCount(marker string, cond func(int) bool, timeout time.Duration) (time.Duration, error) {
	begin := time.Now()
	for time.Since(begin) < timeout {
		if cond(countMarked(marker)) {
			return time.Since(begin), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("not reached within %v (%d running)", timeout, countMarked(marker))
}

func pss(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Pss:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseUint(f[1], 10, 64)
			return v * 1024
		}
	}
	return 0
}

type manyFigures struct {
	start, stop   time.Duration
	cpuPct, wakes float64
	pssMB         float64
	procs         int
}

// many starts n sleep children under p, idles them for window, and stops.
func many(env *Env, p peer, n int, window time.Duration) (manyFigures, error) {
	var f manyFigures
	dir, err := os.MkdirTemp(env.Tmp, fmt.Sprintf("many-%s-%d-", p.name, n))
	if err != nil {
		return f, err
	}
	marker := fmt.Sprintf("%d.%d", 900000+n, time.Now().UnixNano()%1000000)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return f, err
	}
	svcs := make([]service, n)
	for i := range svcs {
		svcs[i] = service{name: fmt.Sprintf("s%d", i), argv: []string{sleep, marker}}
	}
	begin := time.Now()
	cmd, err := p.launch(env, dir, svcs, nil)
	if err != nil {
		return f, err
	}
	defer func() {
		if cmd.ProcessState == nil {
			stopPeer(p, cmd)
		}
	}()
	if _, err := waitCount(marker, func(c int) bool { return c >= n }, 5*time.Minute); err != nil {
		return f, fmt.Errorf("start: %w", err)
	}
	f.start = time.Since(begin)
	time.Sleep(2 * time.Second)
	pids := supervisorPids(p, cmd.Process.Pid)
	f.procs = len(pids)
	var c0, w0 int64
	for _, pid := range pids {
		c0 += cpuTicks(pid)
		w0 += wakeups(pid)
	}
	time.Sleep(window)
	var c1, w1 int64
	var pssSum uint64
	for _, pid := range pids {
		c1 += cpuTicks(pid)
		w1 += wakeups(pid)
		pssSum += pss(pid)
	}
	f.cpuPct = float64(c1-c0) / window.Seconds() // ticks are 1/100 s: ticks/s = percent
	f.wakes = float64(w1-w0) / window.Seconds()
	f.pssMB = float64(pssSum) / (1 << 20)
	begin = time.Now()
	stopped := make(chan struct{})
	go func() { stopPeer(p, cmd); close(stopped) }()
	if _, err := waitCount(marker, func(c int) bool { return c == 0 }, 3*time.Minute); err != nil {
		<-stopped
		return f, fmt.Errorf("stop: %w", err)
	}
	f.stop = time.Since(begin)
	<-stopped
	return f, nil
}

// latency measures restart latency under p (or the shell loop when p is
// nil) for n kills.
func latency(env *Env, p *peer, st *stampReader, n int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp(env.Tmp, "lat-")
	if err != nil {
		return nil, err
	}
	extra := []string{stampEnv + "=" + st.path}
	var cmd *exec.Cmd
	if p == nil {
		cmd = exec.Command("/bin/sh", "-c", `while :; do "$0"; done`, env.Self)
		cmd.Env = append(os.Environ(), extra...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	} else {
		cmd, err = p.launch(env, dir, []service{{name: "stamp", argv: []string{env.Self}}}, extra)
		if err != nil {
			return nil, err
		}
		defer stopPeer(*p, cmd)
	}
	return measureRestarts(st, n)
}

// hungDetection: a child serving HTTP is SIGSTOPped (hung, not dead); the
// time until its replacement stamps.
func hungDetection(env *Env, st *stampReader, tries int) ([]time.Duration, string, error) {
	dir, err := os.MkdirTemp(env.Tmp, "hung-")
	if err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	params := "interval: 1s, timeout: 1s, consecutive_failures: 3"
	conf := filepath.Join(dir, "hung.yaml")
	yaml := fmt.Sprintf(`log_dir: %s
processes:
  - name: web
    command: [%q]
    env: {%s: %q, %s: %q}
    restart: {policy: always, initial_backoff: 0s, max_backoff: 0s, jitter: 0}
    stop_grace: 1s
    health: {http: "http://%s/", delay: 0s, grace: 5s, %s, action: restart}
`, filepath.Join(dir, "logs"), env.Self, stampEnv, st.path, httpEnv, addr, addr, params)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(env.Egret, "supervise", "-q", conf)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	defer stopPeer(peers[0], cmd)
	cur, err := st.next(30 * time.Second)
	if err != nil {
		return nil, "", err
	}
	var out []time.Duration
	for range tries {
		time.Sleep(2 * time.Second) // healthy first
		hung := time.Now().UnixNano()
		syscall.Kill(int(cur[0]), syscall.SIGSTOP)
		next, err := st.next(60 * time.Second)
		if err != nil {
			return nil, "", err
		}
		out = append(out, time.Duration(next[1]-hung))
		cur = next
	}
	return out, "http check, " + params, nil
}

func runCompare(ctx context.Context, env *Env, resultsPath string) error {
	for _, bin := range []string{"supervisord", "s6-svscan"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not installed (scripts/bench-compare.sh installs it): %w", bin, err)
		}
	}
	samples, window, sizes, rounds := 200, 30*time.Second, []int{200, 1000}, 4
	if env.Quick {
		samples, window, sizes, rounds = 8, 3*time.Second, []int{20}, 2
	}
	dir, err := os.MkdirTemp(env.Tmp, "compare-")
	if err != nil {
		return err
	}
	st, err := newStampReader(dir)
	if err != nil {
		return err
	}
	defer st.f.Close()

	// Restart latency, alternating tools round by round.
	lat := map[string][]time.Duration{}
	order := []string{"sh loop", "egret", "supervisord", "s6"}
	for r := range rounds {
		for i := range order {
			name := order[(i+r)%len(order)]
			fmt.Fprintf(env.Log, "bench-compare: restart latency, round %d/%d: %s\n", r+1, rounds, name)
			var p *peer
			for j := range peers {
				if peers[j].name == name {
					p = &peers[j]
				}
			}
			got, err := latency(env, p, st, samples/rounds)
			if err != nil {
				return fmt.Errorf("restart latency under %s: %w", name, err)
			}
			lat[name] = append(lat[name], got...)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	type key struct {
		tool string
		n    int
	}
	mf := map[key]manyFigures{}
	for i, n := range sizes {
		for j := range peers {
			p := peers[(i+j)%len(peers)]
			fmt.Fprintf(env.Log, "bench-compare: %d children under %s\n", n, p.name)
			f, err := many(env, p, n, window)
			if err != nil {
				return fmt.Errorf("%d children under %s: %w", n, p.name, err)
			}
			mf[key{p.name, n}] = f
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	fmt.Fprintf(env.Log, "bench-compare: hung process detection (egret)\n")
	hung, hungParams, err := hungDetection(env, st, 3)
	if err != nil {
		return fmt.Errorf("hung detection: %w", err)
	}

	// The table.
	type line struct {
		figure string
		floor  string
		vals   [3]float64 // egret, supervisord, s6
		unit   string
		format string
	}
	var lines []line
	q := func(name string, qq float64) float64 { return float64(quantile(lat[name], qq)) / 1e6 }
	lines = append(lines,
		line{fmt.Sprintf("restart latency median, ms (%d kills each)", samples), fmt.Sprintf("%.2f", q("sh loop", .5)), [3]float64{q("egret", .5), q("supervisord", .5), q("s6", .5)}, "ms", "%.2f"},
		line{"restart latency p90, ms", fmt.Sprintf("%.2f", q("sh loop", .9)), [3]float64{q("egret", .9), q("supervisord", .9), q("s6", .9)}, "ms", "%.2f"},
	)
	for _, n := range sizes {
		get := func(f func(manyFigures) float64) [3]float64 {
			return [3]float64{f(mf[key{"egret", n}]), f(mf[key{"supervisord", n}]), f(mf[key{"s6", n}])}
		}
		lines = append(lines,
			line{fmt.Sprintf("start %d children, s", n), "", get(func(m manyFigures) float64 { return m.start.Seconds() }), "s", "%.2f"},
			line{fmt.Sprintf("stop %d children, s", n), "", get(func(m manyFigures) float64 { return m.stop.Seconds() }), "s", "%.2f"},
			line{fmt.Sprintf("idle %d children: supervisor CPU, %% of a core over %v", n, window), "", get(func(m manyFigures) float64 { return m.cpuPct }), "%", "%.3f"},
			line{fmt.Sprintf("idle %d children: supervisor wake-ups/s", n), "", get(func(m manyFigures) float64 { return m.wakes }), "/s", "%.2f"},
			line{fmt.Sprintf("idle %d children: supervisor PSS, MB (all its processes)", n), "", get(func(m manyFigures) float64 { return m.pssMB }), "MB", "%.1f"},
			line{fmt.Sprintf("idle %d children: supervisor processes", n), "", get(func(m manyFigures) float64 { return float64(m.procs) }), "", "%.0f"},
		)
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	var tb bytes.Buffer
	fmt.Fprintln(&tb, "| figure | floor | egret | supervisord | s6 | egret / supervisord | egret / s6 |")
	fmt.Fprintln(&tb, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, l := range lines {
		fl := l.floor
		if fl == "" {
			fl = "-"
		}
		fmt.Fprintf(&tb, "| %s | %s | "+l.format+" | "+l.format+" | "+l.format+" | %s | %s |\n", l.figure, fl, l.vals[0], l.vals[1], l.vals[2], ratio(l.vals[0], l.vals[1]), ratio(l.vals[0], l.vals[2]))
	}
	hm, hx := quantile(hung, .5), quantile(hung, 1)
	fmt.Fprintf(&tb, "| hung (SIGSTOPped) process: detected and replaced, s (median, max of %d) | - | %.2f, %.2f (%s) | no built-in health check | no built-in health check | - | - |\n", len(hung), hm.Seconds(), hx.Seconds(), hungParams)
	os.Stdout.Write(tb.Bytes())
	if resultsPath == "" {
		return nil
	}
	return writeResults(resultsPath, env, tb.String(), samples, window)
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func writeResults(path string, env *Env, table string, samples int, window time.Duration) error {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	mem := float64(statusMeminfo("MemTotal")) / (1 << 30)
	var b strings.Builder
	fmt.Fprintf(&b, "# egret supervise beside supervisord and s6\n\n")
	fmt.Fprintf(&b, "Generated by `make bench-compare` (`scripts/bench-compare.sh`, `bench/compare.go`); do not edit by hand.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs (%s), %.1f GiB RAM, Linux %s\n", runtime.GOARCH, runtime.NumCPU(), cpu, mem, cmdOut("uname", "-r"))
	fmt.Fprintf(&b, "- Versions: %s; supervisord %s; s6 %s; %s\n\n", cmdOut(env.Egret, "--version"), cmdOut("supervisord", "--version"), cmdOut("dpkg-query", "-W", "-f", "${Version}", "s6"), runtime.Version())
	b.WriteString(table)
	fmt.Fprintf(&b, `
How it is measured:
- Restart latency: the child writes a CLOCK_REALTIME timestamp to a FIFO as its first action and
  then waits; the harness SIGKILLs it 20 ms later and takes the replacement's timestamp minus the
  time of the kill. %d kills per tool, in %s rounds alternating the tools. Each tool is configured
  for its fastest restart: egret %s; supervisord %s; s6-supervise with the child binary as %s (s6
  has no setting for its 1 s pause after a child that ran less than a second). The floor is a
  plain shell loop re-running the same child.
- Many children: each child is /bin/sleep; "start" is from launching the supervisor until every
  child exists, "stop" from SIGTERM to the supervisor until none is left (polled every 50 ms in
  /proc). CPU, wake-ups (context switches of all threads) and PSS are summed over the
  supervisor's own processes (egret and its guardian; supervisord; s6-svscan and every
  s6-supervise) over %v of idling. One try per size.
- Hung process: the child answers HTTP; the harness SIGSTOPs it (alive but hung) and measures
  until its replacement stamps. Only egret has a built-in health check.
`, samples, "4", "`initial_backoff: 0s, max_backoff: 0s`", "`autorestart=true, startsecs=0`", "`./run`", window)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func statusMeminfo(key string) uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			f := strings.Fields(l)
			v, _ := strconv.ParseUint(f[1], 10, 64)
			return v * 1024
		}
	}
	return 0
}
