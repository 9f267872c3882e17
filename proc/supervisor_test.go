package proc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRestartBackoffAndBudget(t *testing.T) {
	sp := helperSpec(t, "crash", "exit", "3", "boom")
	sp.Restart = RestartPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, Budget: Budget{Restarts: 3, Window: time.Minute}}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	var backoffs []time.Duration
	for len(backoffs) < 3 {
		ev := waitEvent(t, events, 10*time.Second, is(EventExited, "crash"))
		if ev.Exit == nil || ev.Exit.Code != 3 {
			t.Fatalf("exited event %+v, want exit status 3", ev)
		}
		backoffs = append(backoffs, ev.Backoff)
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	for i := range want {
		if backoffs[i] != want[i] {
			t.Errorf("backoff %d = %v, want %v", i, backoffs[i], want[i])
		}
	}
	ev := waitEvent(t, events, 10*time.Second, is(EventFailed, "crash"))
	if !strings.Contains(ev.Reason, "budget") {
		t.Errorf("failed reason %q does not mention the budget", ev.Reason)
	}
	if joined := strings.Join(ev.Lines, "\n"); !strings.Contains(joined, "boom") || !strings.Contains(joined, "err: boom") {
		t.Errorf("failed event lines %q lack the output", ev.Lines)
	}
	st := s.Snapshot()
	if len(st) != 1 || st[0].State != StateFailed || st[0].Restarts != 3 || st[0].LastExit == nil || st[0].LastExit.Code != 3 {
		t.Errorf("Snapshot = %+v, want failed after 3 restarts with exit status 3", st)
	}
	// An explicit restart clears the failed state.
	if err := s.Restart(context.Background(), "crash"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 10*time.Second, is(EventStarted, "crash"))
}

func TestStableRunResetsBackoff(t *testing.T) {
	sp := helperSpec(t, "flaky", "exit", "1", "", "150ms")
	sp.Restart = RestartPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, StableAfter: 100 * time.Millisecond}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	for i := 0; i < 3; i++ {
		ev := waitEvent(t, events, 10*time.Second, is(EventExited, "flaky"))
		if ev.Backoff != 10*time.Millisecond {
			t.Errorf("exit %d after a stable run: backoff %v, want 10ms", i, ev.Backoff)
		}
	}
}

func TestMissingBinaryBacksOff(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Specs: []Spec{{Name: "ghost", Argv: []string{"/nonexistent/egret-ghost"}}, {Name: "noexec", Argv: []string{noexec}}}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	for _, tc := range []struct{ name, want string }{{"ghost", "no such file"}, {"noexec", "permission denied"}} {
		ev := waitEvent(t, events, 5*time.Second, is(EventExited, tc.name))
		if ev.Exit == nil || ev.Exit.Err == nil || !strings.Contains(ev.Reason, tc.want) {
			t.Errorf("%s: exited event %+v, want a start error mentioning %q", tc.name, ev, tc.want)
		}
		if ev.Backoff < SpawnErrorBackoff {
			t.Errorf("%s: backoff %v after a start error, want at least %v", tc.name, ev.Backoff, SpawnErrorBackoff)
		}
	}
	for _, st := range s.Snapshot() {
		if st.State != StateBackoff || st.Restarts != 1 {
			t.Errorf("%s: state %s restarts %d, want backoff after 1 attempt", st.Name, st.State, st.Restarts)
		}
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	sp := helperSpec(t, "stubborn", "ignore-term")
	sp.StopGrace = 300 * time.Millisecond
	s := New(Options{})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	if err := s.Start(sp); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, is(EventStarted, "stubborn"))
	waitLine(t, s, "stubborn", "ready")
	begin := time.Now()
	if err := s.Stop(context.Background(), "stubborn"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	ev := waitEvent(t, events, 5*time.Second, is(EventStopped, "stubborn"))
	if ev.Exit == nil || ev.Exit.Signal != syscall.SIGKILL {
		t.Errorf("stopped event %+v, want killed by SIGKILL", ev)
	}
	if took < sp.StopGrace {
		t.Errorf("Stop returned after %v, before the %v grace", took, sp.StopGrace)
	}
	if st := s.Snapshot(); st[0].State != StateStopped {
		t.Errorf("state after Stop = %s, want stopped", st[0].State)
	}
}

// waitLine waits until the process printed line (the helper says "ready"
// once its signal handling is set up).
func waitLine(t *testing.T, s *Supervisor, name, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) { // no event exists for output; poll with a deadline
		lines, _ := s.LastLines(name)
		for _, l := range lines {
			if l == line {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never printed %q", name, line)
}

func TestShutdownStopsAllInParallel(t *testing.T) {
	var specs []Spec
	for i := 0; i < 5; i++ {
		sp := helperSpec(t, "stubborn"+strconv.Itoa(i), "ignore-term")
		sp.StopGrace = 500 * time.Millisecond
		specs = append(specs, sp)
	}
	s := New(Options{Specs: specs})
	events, cancel := s.Subscribe()
	defer cancel()
	stop := run(t, s)
	var pids []int
	for range specs {
		pids = append(pids, waitEvent(t, events, 5*time.Second, func(ev Event) bool { return ev.Type == EventStarted }).Pid)
	}
	for _, sp := range specs {
		waitLine(t, s, sp.Name, "ready")
	}
	begin := time.Now()
	stop()
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("shutdown of 5 processes with a 500ms grace took %v: not parallel", took)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after shutdown", pid)
		}
	}
}

func TestHealthTCP(t *testing.T) {
	addr := freePort(t)
	sp := helperSpec(t, "svc", "sleep")
	sp.Health = &HealthCheck{TCP: addr, Interval: 20 * time.Millisecond, Timeout: time.Second, ConsecutiveFailures: 2, Action: HealthReport}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	ev := waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "svc"))
	if !strings.Contains(ev.Reason, "tcp") {
		t.Errorf("unhealthy reason %q", ev.Reason)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, is(EventHealthy, "svc"))
	if st := s.Snapshot()[0]; st.Health != HealthHealthy {
		t.Errorf("Snapshot health = %q, want healthy", st.Health)
	}
	l.Close()
	waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "svc"))
	if st := s.Snapshot()[0]; st.Restarts != 0 || st.State != StateRunning {
		t.Errorf("report-only check changed the process: %+v", st)
	}
}

func TestHealthHTTP(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	sp := helperSpec(t, "web", "sleep")
	sp.Health = &HealthCheck{HTTP: srv.URL + "/health", Interval: 20 * time.Millisecond, Timeout: time.Second, ConsecutiveFailures: 1, Action: HealthReport}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	waitEvent(t, events, 5*time.Second, is(EventHealthy, "web"))
	status.Store(503)
	ev := waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "web"))
	if !strings.Contains(ev.Reason, "503") {
		t.Errorf("unhealthy reason %q lacks the status", ev.Reason)
	}
	status.Store(302) // 200..399 is healthy
	waitEvent(t, events, 5*time.Second, is(EventHealthy, "web"))
}

func TestHealthExecRestarts(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sp := helperSpec(t, "app", "sleep")
	sp.StopGrace = time.Second
	sp.Health = &HealthCheck{Exec: []string{"test", "-f", flag}, Interval: 20 * time.Millisecond, Timeout: 5 * time.Second, ConsecutiveFailures: 2, Action: HealthRestart}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	first := waitEvent(t, events, 5*time.Second, is(EventStarted, "app"))
	waitEvent(t, events, 5*time.Second, is(EventHealthy, "app"))
	os.Remove(flag)
	waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "app"))
	ev := waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "app"))
	if !strings.Contains(ev.Reason, "2 consecutive") {
		t.Errorf("second failure reason %q", ev.Reason)
	}
	os.WriteFile(flag, nil, 0o644)
	ex := waitEvent(t, events, 5*time.Second, is(EventExited, "app"))
	if !ex.WillRestart || ex.Reason != "health check failed" {
		t.Errorf("exit after failed checks: %+v, want a restart for the health check", ex)
	}
	second := waitEvent(t, events, 5*time.Second, is(EventStarted, "app"))
	if second.Pid == first.Pid {
		t.Errorf("restarted process has the same pid %d", first.Pid)
	}
	waitEvent(t, events, 5*time.Second, is(EventHealthy, "app"))
}

func TestExecCheckTimeout(t *testing.T) {
	sp := helperSpec(t, "slowcheck", "sleep")
	sp.Health = &HealthCheck{Exec: []string{"sleep", "30"}, Interval: time.Hour, Timeout: 100 * time.Millisecond, ConsecutiveFailures: 5, Action: HealthReport}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	ev := waitEvent(t, events, 5*time.Second, is(EventUnhealthy, "slowcheck"))
	if !strings.Contains(ev.Reason, "deadline") {
		t.Errorf("timeout reason %q", ev.Reason)
	}
}

func TestReplace(t *testing.T) {
	a, b, c := helperSpec(t, "a", "sleep"), helperSpec(t, "b", "sleep"), helperSpec(t, "c", "sleep")
	s := New(Options{Specs: []Spec{a, b}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	pids := map[string]int{}
	for range 2 {
		ev := waitEvent(t, events, 5*time.Second, func(ev Event) bool { return ev.Type == EventStarted })
		pids[ev.Name] = ev.Pid
	}
	b2 := b
	b2.Env = map[string]string{helperEnv: "sleep", "CHANGED": "1"}
	if err := s.Replace(context.Background(), []Spec{a, b2, c}); err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{}
	for _, st := range s.Snapshot() {
		got[st.Name] = st
	}
	if len(got) != 3 || got["a"].Pid != pids["a"] || got["b"].Pid == pids["b"] || got["b"].Pid == 0 || got["c"].Pid == 0 {
		t.Errorf("after Replace: %+v; before: %v (want a kept, b restarted, c started)", got, pids)
	}
	if alive(pids["b"]) {
		t.Errorf("old b (pid %d) still alive", pids["b"])
	}
	if err := s.Replace(context.Background(), []Spec{c}); err != nil {
		t.Fatal(err)
	}
	if st := s.Snapshot(); len(st) != 1 || st[0].Name != "c" {
		t.Errorf("after Replace with c only: %+v", st)
	}
}

func TestDetachOutlivesSupervisor(t *testing.T) {
	sp := helperSpec(t, "exec", "sleep")
	sp.Detach = true
	sp.Logs.Dir = t.TempDir()
	s := New(Options{Specs: []Spec{sp, helperSpec(t, "attached", "sleep")}})
	events, cancel := s.Subscribe()
	defer cancel()
	stop := run(t, s)
	pids := map[string]int{}
	for range 2 {
		ev := waitEvent(t, events, 5*time.Second, func(ev Event) bool { return ev.Type == EventStarted })
		pids[ev.Name] = ev.Pid
	}
	stop()
	defer func() {
		syscall.Kill(pids["exec"], syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pids["exec"], &ws, 0, nil)
	}()
	if !alive(pids["exec"]) {
		t.Errorf("detached process died with its supervisor")
	}
	if alive(pids["attached"]) {
		t.Errorf("attached process outlived its supervisor")
	}
	if sid, _ := unix.Getsid(pids["exec"]); sid != pids["exec"] {
		t.Errorf("detached process session %d, want its own (%d)", sid, pids["exec"])
	}
}

func TestLogRotationBoundsDisk(t *testing.T) {
	dir := t.TempDir()
	sp := helperSpec(t, "chatty", "chatty", strconv.Itoa(2<<20))
	sp.Restart.Mode = RestartNever
	sp.Logs = LogPolicy{MaxSize: 64 << 10, MaxFiles: 2}
	s := New(Options{Specs: []Spec{sp}, LogDir: dir})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	ev := waitEvent(t, events, 20*time.Second, is(EventExited, "chatty"))
	if len(ev.Lines) == 0 || !strings.HasPrefix(ev.Lines[len(ev.Lines)-1], "xxx") {
		t.Errorf("last lines %q", ev.Lines)
	}
	var total int64
	names, _ := filepath.Glob(filepath.Join(dir, "chatty.stdout*"))
	for _, n := range names {
		st, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("%s is %d bytes, over the 64 KiB limit", n, st.Size())
		}
		total += st.Size()
	}
	if len(names) != 3 || total > 3*64<<10 || total < 2*64<<10 {
		t.Errorf("log files %v hold %d bytes, want 3 files, 2 of them full (64 KiB)", names, total)
	}
}

// TestSupervisorKilled runs a supervisor as a real subprocess, SIGKILLs it,
// and checks that its child, the child's group member and a grandchild that
// left the group by setsid all die.
func TestSupervisorKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	exe, _ := os.Executable()
	cmd := osexec.Command(exe, pidFile)
	cmd.Env = append(os.Environ(), helperEnv+"=supervisor")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	deadline := time.Now().Add(20 * time.Second)
	for len(pids) == 0 && time.Now().Before(deadline) { // the file appears by rename; poll with a deadline
		if b, err := os.ReadFile(pidFile); err == nil {
			for _, f := range strings.Fields(string(b)) {
				p, _ := strconv.Atoi(f)
				pids = append(pids, p)
			}
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(pids) != 3 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("tree pids %v, want 3", pids)
	}
	for _, p := range pids {
		if !alive(p) {
			t.Fatalf("pid %d not alive before the kill", p)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, p := range pids {
		waitDead(t, p, 10*time.Second)
	}
}

// TestManyRestarts restarts a short-lived child 10,000 times and checks that
// no zombie, file descriptor or goroutine is left over.
func TestManyRestarts(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 500
	}
	truePath, err := exec("true")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	events, cancel := s.Subscribe()
	defer cancel()
	stop := run(t, s)
	if err := s.Start(Spec{Name: "blink", Argv: []string{truePath}}); err != nil {
		t.Fatal(err)
	}
	var fdsEarly, goroutinesEarly int
	for started := 0; started < n; {
		ev := <-events
		if ev.Type != EventStarted {
			continue
		}
		started++
		if started == 100 {
			fdsEarly, goroutinesEarly = openFDs(t), runtime.NumGoroutine()
		}
	}
	if err := s.Stop(context.Background(), "blink"); err != nil {
		t.Fatal(err)
	}
	fdsLate, goroutinesLate := openFDs(t), runtime.NumGoroutine()
	if fdsLate > fdsEarly+4 {
		t.Errorf("open fds grew from %d to %d over %d restarts", fdsEarly, fdsLate, n)
	}
	if goroutinesLate > goroutinesEarly+8 {
		t.Errorf("goroutines grew from %d to %d over %d restarts", goroutinesEarly, goroutinesLate, n)
	}
	if z := zombies(t); z != 0 {
		t.Errorf("%d zombies after %d restarts", z, n)
	}
	st := s.Snapshot()[0]
	if st.Restarts < n-1 {
		t.Errorf("Restarts = %d, want at least %d", st.Restarts, n-1)
	}
	stop()
	if z := zombies(t); z != 0 {
		t.Errorf("%d zombies after shutdown", z)
	}
}

func TestErrors(t *testing.T) {
	s := New(Options{})
	run(t, s)
	if err := s.Stop(context.Background(), "nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Stop(unknown) = %v, want ErrUnknown", err)
	}
	sp := helperSpec(t, "x", "sleep")
	if err := s.Start(sp); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(sp); !errors.Is(err, ErrExists) {
		t.Errorf("Start twice = %v, want ErrExists", err)
	}
	if err := s.Start(Spec{Name: "bad/name", Argv: []string{"x"}}); err == nil {
		t.Errorf("Start with a slash in the name succeeded")
	}
}

// TestOSExecAlongside checks that the shared reaper leaves alone children
// that other code starts with os/exec, even in their own process group.
func TestOSExecAlongside(t *testing.T) {
	s := New(Options{Specs: []Spec{helperSpec(t, "busy", "exit", "0")}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	waitEvent(t, events, 5*time.Second, is(EventExited, "busy")) // the reaper is at work
	for _, setpgid := range []bool{false, true} {
		cmd := osexec.Command("sh", "-c", "exit 7")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: setpgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let the child become a zombie and the reaper run a few times
		// before its owner waits.
		for deadline := time.Now().Add(5 * time.Second); alive(cmd.Process.Pid) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		for range 3 {
			waitEvent(t, events, 5*time.Second, is(EventExited, "busy"))
		}
		err := cmd.Wait()
		var ee *osexec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("os/exec child (setpgid %v) beside a supervisor: %v, want exit status 7", setpgid, err)
		}
	}
}

// TestGuardianRespawn kills the guardian: the supervisor starts a new one.
func TestGuardianRespawn(t *testing.T) {
	s := New(Options{Specs: []Spec{helperSpec(t, "a", "sleep")}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	waitEvent(t, events, 5*time.Second, is(EventStarted, "a"))
	guardPid := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.guard.mu.Lock()
		defer s.guard.mu.Unlock()
		return s.guard.pid
	}
	old := guardPid()
	if !alive(old) {
		t.Fatalf("guardian %d not running", old)
	}
	syscall.Kill(old, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for guardPid() == old && time.Now().Before(deadline) { // no event for this; poll with a deadline
		time.Sleep(5 * time.Millisecond)
	}
	if p := guardPid(); p == old || !alive(p) {
		t.Errorf("no new guardian after killing %d (now %d)", old, p)
	}
}

// pidfdCount counts this process's open pidfds.
func pidfdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[pidfd]" {
			n++
		}
	}
	return n
}

// TestSnapshotHoldsNoDescriptors: a status snapshot reads CPU and RSS without
// leaving a descriptor behind (gopsutil's NewProcess opened a pidfd per call
// through os.FindProcess, released only by a GC; the chaos suite saw
// executors' descriptors grow by hundreds).
func TestSnapshotHoldsNoDescriptors(t *testing.T) {
	s := New(Options{Specs: []Spec{helperSpec(t, "idle", "sleep")}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	waitEvent(t, events, 10*time.Second, is(EventStarted, "idle"))
	before := pidfdCount(t)
	for i := 0; i < 100; i++ {
		if st := s.Snapshot(); len(st) != 1 || st[0].RSS == 0 {
			t.Fatalf("Snapshot = %+v, want one process with its RSS", st)
		}
	}
	if after := pidfdCount(t); after > before {
		t.Errorf("pidfds after 100 snapshots = %d, before = %d; want no growth", after, before)
	}
}

func TestSharedLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.log")
	sp := helperSpec(t, "both", "exit", "0", "hello")
	sp.Restart.Mode = RestartNever
	sp.Logs = LogPolicy{Stdout: path, Stderr: path, MaxSize: 1 << 20, MaxFiles: 1}
	s := New(Options{Specs: []Spec{sp}})
	events, cancel := s.Subscribe()
	defer cancel()
	run(t, s)
	waitEvent(t, events, 10*time.Second, is(EventExited, "both"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, "hello\n") || !strings.Contains(got, "err: hello\n") {
		t.Errorf("shared log file holds %q, want both streams", got)
	}
}
