package proc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the helper processes: with PROC_TEST_HELPER set
// it runs a helper mode instead of the tests.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// helperSpec returns a spec running this binary in a helper mode.
func helperSpec(t testing.TB, name, mode string, args ...string) Spec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: name, Argv: append([]string{exe}, args...), Env: map[string]string{helperEnv: mode}}
}

func helper(mode string, args []string) int {
	switch mode {
	case "sleep": // block until killed
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "exit": // args: code, optional message, optional run time
		code, _ := strconv.Atoi(args[0])
		if len(args) > 1 {
			fmt.Println(args[1])
			fmt.Fprintln(os.Stderr, "err: "+args[1])
		}
		if len(args) > 2 {
			d, _ := time.ParseDuration(args[2])
			time.Sleep(d)
		}
		return code
	case "chatty": // args: bytes
		n, _ := strconv.Atoi(args[0])
		line := strings.Repeat("x", 99) + "\n"
		for i := 0; i < n; i += len(line) {
			os.Stdout.WriteString(line)
		}
		return 0
	case "tree": // args: pid file; leaves a same-group child and a setsid grandchild
		sleepAbs, _ := exec("sleep")
		var sameGroup, escaped int
		pid, err := syscall.ForkExec(sleepAbs, []string{"sleep", "300"}, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
		if err != nil {
			return 2
		}
		sameGroup = pid
		pid, err = syscall.ForkExec(sleepAbs, []string{"sleep", "301"}, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setsid: true}})
		if err != nil {
			return 2
		}
		escaped = pid
		tmp := args[0] + ".tmp"
		os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d %d\n", os.Getpid(), sameGroup, escaped)), 0o644)
		os.Rename(tmp, args[0])
		time.Sleep(time.Hour)
		return 0
	case "supervisor": // args: pid file for the tree helper; runs a supervisor until killed
		exe, _ := os.Executable()
		s := New(Options{NoGuardian: os.Getenv("NOGUARD") != "", Specs: []Spec{{Name: "tree", Argv: []string{exe, args[0]}, Env: map[string]string{helperEnv: "tree"}}}})
		s.Run(context.Background())
		return 0
	case "stamp": // args: file; appends the time as its first action, then sleeps
		now := time.Now().UnixNano()
		f, _ := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		fmt.Fprintf(f, "%d\n", now)
		f.Close()
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func exec(name string) (string, error) { return lookPath(name, os.Getenv("PATH")) }

// run starts s.Run and returns a stop function that cancels it and waits.
func run(t testing.TB, s *Supervisor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("Run did not return 30 s after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitEvent reads events until one matches, failing after timeout.
func waitEvent(t testing.TB, ch <-chan Event, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed while waiting")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no matching event within %v", timeout)
		}
	}
}

func is(typ EventType, name string) func(Event) bool {
	return func(ev Event) bool { return ev.Type == typ && ev.Name == name }
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// waitDead waits for pid to exit, through a pidfd (no polling).
func waitDead(t testing.TB, pid int, timeout time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(timeout/time.Millisecond))
	if (err != nil || n == 0) && alive(pid) {
		t.Errorf("process %d still alive after %v", pid, timeout)
	}
}

// zombies counts this process's children that are zombies.
func zombies(t testing.TB) int {
	self := strconv.Itoa(os.Getpid())
	names, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == self {
			n++
		}
	}
	return n
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// freePort returns a loopback address nobody listens on.
func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
