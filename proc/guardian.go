package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The guardian is this binary re-executed under guardianArg0 with the
// supervisor's token in guardianEnv and the read end of a pipe as fd 3. The
// supervisor writes "+pgid" and "-pgid" lines as groups come and go. When the
// pipe reaches EOF (the supervisor exited, however it died), the guardian
// SIGKILLs every group still listed, then every process whose environment
// carries TreeEnv=<token>, until none is left, and exits.
const (
	guardianEnv  = "EGRET_PROC_GUARDIAN"
	guardianArg0 = "egret-proc-guardian"
)

func init() {
	// Runs in any binary that links proc (egret, and test binaries) before
	// main: the guardian must not run the host program's main.
	if tok := os.Getenv(guardianEnv); tok != "" && len(os.Args) > 0 && os.Args[0] == guardianArg0 {
		os.Exit(guardianMain(tok, os.NewFile(3, "supervisor")))
	}
}

func guardianMain(token string, in *os.File) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	groups := map[int]struct{}{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		g, err := strconv.Atoi(line[1:])
		if err != nil || g <= 1 {
			continue
		}
		if line[0] == '+' {
			groups[g] = struct{}{}
		} else {
			delete(groups, g)
		}
	}
	for g := range groups {
		_ = unix.Kill(-g, syscall.SIGKILL)
	}
	for range 50 {
		if sweep(token) == 0 {
			break
		}
	}
	return 0
}

// sweep SIGKILLs every process carrying TreeEnv=token and returns how many.
func sweep(token string) int {
	marker := []byte(TreeEnv + "=" + token + "\x00")
	self := os.Getpid()
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	n := 0
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || !hasEnv(env, marker) {
			continue
		}
		if unix.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func hasEnv(environ, marker []byte) bool {
	return bytes.HasPrefix(environ, marker) || bytes.Contains(environ, append([]byte{0}, marker...))
}

// guardian is the supervisor's side of the pipe.
type guardian struct {
	token  string
	mu     sync.Mutex
	w      *os.File
	pid    int
	groups map[int]struct{}
	closed bool
	exited chan struct{}
}

func startGuardian(token string) (*guardian, error) {
	g := &guardian{token: token, groups: map[int]struct{}{}}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.spawnLocked(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guardian) spawnLocked() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	defer r.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return fmt.Errorf("guardian: %w", err)
	}
	defer devnull.Close()
	env := append(os.Environ(), guardianEnv+"="+g.token)
	exited := make(chan struct{})
	pid, err := spawn(&spawnReq{path: "/proc/self/exe", argv: []string{guardianArg0}, env: env,
		files:  []uintptr{devnull.Fd(), devnull.Fd(), os.Stderr.Fd(), r.Fd()},
		onExit: func(unix.WaitStatus) { close(exited); g.onExit() }})
	if err != nil {
		w.Close()
		return fmt.Errorf("guardian: start: %w", err)
	}
	g.w, g.pid, g.exited = w, pid, exited
	for pg := range g.groups {
		fmt.Fprintf(w, "+%d\n", pg)
	}
	return nil
}

// onExit restarts a guardian that died while its supervisor lives.
func (g *guardian) onExit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.w.Close()
	_ = g.spawnLocked() // on failure, children still have their parent-death signal
}

func (g *guardian) add(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups[pgid] = struct{}{}
	fmt.Fprintf(g.w, "+%d\n", pgid)
}

func (g *guardian) remove(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.groups, pgid)
	fmt.Fprintf(g.w, "-%d\n", pgid)
}

// close ends the guardian: it sweeps, then exits; wait at most bound.
func (g *guardian) close(bound time.Duration) {
	g.mu.Lock()
	g.closed = true
	g.w.Close()
	exited, pid := g.exited, g.pid
	g.mu.Unlock()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = unix.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}
