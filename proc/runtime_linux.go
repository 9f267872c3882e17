package proc

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The process-wide machinery shared by every Supervisor in the process: one
// spawner goroutine locked to its OS thread (the "parent" of every child, as
// the parent-death signal sees it) and one reaper. They run while at least one
// supervisor runs.
var rt struct {
	refMu sync.Mutex
	refs  int
	stop  chan struct{}
	done  sync.WaitGroup
	reqs  chan *spawnReq

	mu    sync.Mutex // owned; held across fork so no exit is seen before its pid is known
	owned map[int]exitFunc
}

// exitFunc receives a reaped child's status. It runs on the reaper goroutine.
type exitFunc func(ws unix.WaitStatus)

type spawnReq struct {
	path   string
	argv   []string
	env    []string
	dir    string
	files  []uintptr
	setsid bool // a new session (else a new process group)
	pdeath bool // SIGKILL when this process dies
	onExit exitFunc
	pid    int
	err    error
	done   chan struct{}
}

// acquire starts the spawner and the reaper if they are not running.
func acquire() {
	rt.refMu.Lock()
	defer rt.refMu.Unlock()
	rt.refs++
	if rt.refs > 1 {
		return
	}
	// Orphans of our descendants come to us, to be reaped (and seen).
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	rt.mu.Lock()
	if rt.owned == nil {
		rt.owned = make(map[int]exitFunc)
	}
	rt.mu.Unlock()
	rt.stop = make(chan struct{})
	rt.reqs = make(chan *spawnReq)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	rt.done.Add(2)
	go spawner(rt.reqs, rt.stop)
	go reaper(sigc, rt.stop)
}

// release stops the spawner and the reaper when the last supervisor is done.
func release() {
	rt.refMu.Lock()
	defer rt.refMu.Unlock()
	rt.refs--
	if rt.refs > 0 {
		return
	}
	close(rt.stop)
	rt.done.Wait()
}

// spawner forks every child from one locked OS thread. The thread is never
// handed back to the runtime while children started from it may live, so
// their parent-death signal fires only when this process dies (golang/go#27505).
func spawner(reqs <-chan *spawnReq, stop <-chan struct{}) {
	defer rt.done.Done()
	runtime.LockOSThread()
	// No UnlockOSThread: when the last supervisor is gone the thread exits
	// with this goroutine; no child with a parent-death signal is left.
	for {
		select {
		case r := <-reqs:
			r.pid, r.err = forkExec(r)
			close(r.done)
		case <-stop:
			return
		}
	}
}

func forkExec(r *spawnReq) (int, error) {
	sys := &syscall.SysProcAttr{}
	if r.setsid {
		sys.Setsid = true
	} else {
		sys.Setpgid = true
	}
	if r.pdeath {
		sys.Pdeathsig = syscall.SIGKILL
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	pid, err := syscall.ForkExec(r.path, r.argv, &syscall.ProcAttr{Dir: r.dir, Env: r.env, Files: r.files, Sys: sys})
	if err != nil {
		return 0, err
	}
	rt.owned[pid] = r.onExit
	return pid, nil
}

// spawn starts a child through the spawner; onExit gets its status.
func spawn(r *spawnReq) (int, error) {
	r.done = make(chan struct{})
	rt.reqs <- r
	<-r.done
	return r.pid, r.err
}

// reaper waits for SIGCHLD and reaps what is ours: our children and orphans
// re-parented to us. Children of this process started by other code (os/exec,
// in their caller's process group) are left for their owner's Wait.
func reaper(sigc chan os.Signal, stop <-chan struct{}) {
	defer rt.done.Done()
	defer signal.Stop(sigc)
	for {
		reapAll()
		select {
		case <-sigc:
		case <-stop:
			reapAll()
			return
		}
	}
}

// siginfo is the part of siginfo_t that waitid fills for SIGCHLD.
type siginfo struct {
	signo, errno, code, _ int32
	pid                   int32
	uid                   uint32
	status                int32
	_                     [100]byte
}

func reapAll() {
	ourPgrp := unix.Getpgrp()
	for {
		var si siginfo
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&si)),
			unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || si.pid == 0 {
			return
		}
		pid := int(si.pid)
		rt.mu.Lock()
		fn, ok := rt.owned[pid]
		delete(rt.owned, pid)
		rt.mu.Unlock()
		if !ok && (processGroup(pid) == ourPgrp || heldByPidfd(pid)) {
			// Someone else's child (os/exec keeps a pidfd to it): reap ours
			// one by one behind it.
			reapOwned()
			return
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && fn != nil {
			fn(ws)
		}
	}
}

func reapOwned() {
	rt.mu.Lock()
	pids := make([]int, 0, len(rt.owned))
	for pid := range rt.owned {
		pids = append(pids, pid)
	}
	rt.mu.Unlock()
	for _, pid := range pids {
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil || got != pid {
			continue
		}
		rt.mu.Lock()
		fn := rt.owned[pid]
		delete(rt.owned, pid)
		rt.mu.Unlock()
		if fn != nil {
			fn(ws)
		}
	}
}

// processGroup reads a process's group from /proc (zombies keep theirs);
// -1 if unknown.
func processGroup(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return -1
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return -1
	}
	return g
}

// heldByPidfd reports whether this process holds a pidfd for pid, as an
// os.Process started by os/exec does (Go 1.23+): that child is not an orphan.
func heldByPidfd(pid int) bool {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return false
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	want := "Pid:\t" + strconv.Itoa(pid) + "\n"
	for _, n := range names {
		if l, err := os.Readlink("/proc/self/fd/" + n); err != nil || l != "anon_inode:[pidfd]" {
			continue
		}
		if b, err := os.ReadFile("/proc/self/fdinfo/" + n); err == nil && strings.Contains(string(b), want) {
			return true
		}
	}
	return false
}

// lookPath finds argv0 the way a shell would, in the child's PATH.
func lookPath(argv0, path string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + argv0
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in PATH", argv0)
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// killGroup signals a process group; a group that is already gone is not an
// error.
func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = unix.Kill(-pgid, sig)
	}
}
