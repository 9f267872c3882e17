// Package proc supervises a set of Linux processes: it starts them, watches
// them, health-checks them, restarts them under a backoff and a budget, keeps
// their logs bounded, and stops them, leaving no orphan and no zombie behind.
//
// Design (docs/supervisor.md has the full story):
//   - Every child runs in its own process group; stopping sends the stop
//     signal (and SIGCONT) to the group, then SIGKILL to the group after the
//     grace period.
//   - Children are forked from one goroutine locked to one OS thread that lives
//     as long as any supervisor runs, so the parent-death signal (SIGKILL) fires
//     only when the supervisor process dies, never when the Go runtime retires
//     a thread.
//   - The supervisor process is a child subreaper: grandchildren that a child
//     leaves behind are re-parented to it and reaped. One reaper per process
//     serves every child; it is woken by SIGCHLD, peeks at exited children with
//     waitid(WNOWAIT) and reaps only its own children and orphans, so code
//     elsewhere in the process may still use os/exec.
//   - A small guardian process (this same binary, re-executed) holds the read
//     end of a pipe from the supervisor. When the pipe closes, because the
//     supervisor exited or was SIGKILLed, the guardian kills every process
//     group it was told about and every process carrying the supervisor's
//     tree token in its environment, so even grandchildren that left their
//     process group die with the supervisor.
//   - Decisions (backoff, budget, health) are pure functions and small types
//     with the time passed in.
package proc

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"
)

// Spec describes one supervised process. A Spec is a value: Replace compares
// specs with Equal to decide which processes to keep.
type Spec struct {
	// Name identifies the process within its supervisor; it must be unique,
	// non-empty, and usable as a file name (it names the log files).
	Name string
	// Argv is the command line. Argv[0] without a slash is looked up in PATH.
	Argv []string
	// Env holds variables added to (or overriding) the supervisor's own
	// environment.
	Env map[string]string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// Restart says when and how fast the process is restarted after it exits.
	Restart RestartPolicy
	// Health is an optional health check.
	Health *HealthCheck
	// StopSignal is sent to the process group first when stopping; 0 means
	// SIGTERM.
	StopSignal syscall.Signal
	// StopGrace is how long to wait after StopSignal before SIGKILL; 0 means
	// DefaultStopGrace.
	StopGrace time.Duration
	// Logs says where stdout and stderr go and how they are rotated.
	Logs LogPolicy
	// Detach marks a process that must outlive its supervisor on purpose (the
	// local scheduler's executors): it gets its own session, no parent-death
	// signal, no tree token, is not reported to the guardian, writes straight
	// to its log files (no rotation, no in-memory lines), and is left running
	// when the supervisor shuts down unless Options.StopDetached is set.
	Detach bool
}

// RestartMode says after which exits a process is restarted.
type RestartMode string

// Restart modes. The empty mode means RestartAlways.
const (
	RestartAlways    RestartMode = "always"     // after any exit
	RestartOnFailure RestartMode = "on-failure" // after a non-zero exit or a death by signal
	RestartNever     RestartMode = "never"      // never
)

// RestartPolicy is when and how fast a process is restarted. Zero durations
// are taken literally: a zero InitialBackoff and MaxBackoff restart at once,
// every time (a binary that cannot be executed still backs off, see
// SpawnErrorBackoff).
type RestartPolicy struct {
	Mode RestartMode
	// InitialBackoff is the delay before the first restart after a stable
	// run; it may be 0. Each further restart doubles the delay (from
	// MinBackoffStep when InitialBackoff is 0) up to MaxBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps the delay.
	MaxBackoff time.Duration
	// Jitter adds a random fraction, in [0, Jitter), of the delay to it, so
	// that processes that died together do not restart in lock step.
	Jitter float64
	// StableAfter: a run at least this long resets the backoff to
	// InitialBackoff. 0 means never reset.
	StableAfter time.Duration
	// Budget limits restarts; past it the process is marked failed.
	Budget Budget
}

// Budget allows at most Restarts restarts within any Window. Restarts == 0
// means no limit.
type Budget struct {
	Restarts int
	Window   time.Duration
}

// HealthAction is what happens when a process becomes unhealthy.
type HealthAction string

// Health actions. The empty action means HealthRestart.
const (
	HealthRestart HealthAction = "restart" // stop the process (stop signal, grace, SIGKILL) and restart it
	HealthReport  HealthAction = "report"  // only publish the event
)

// HealthCheck is a liveness check with the Mesos semantics: the first check
// runs Delay after the process starts; each next one Interval after the
// previous one ended; a check that takes longer than Timeout fails; failures
// within Grace of the start are ignored until the first success; after
// ConsecutiveFailures failures in a row the Action is taken. Exactly one of
// Exec, TCP and HTTP is set.
type HealthCheck struct {
	// Exec runs a command (in the process's directory and environment);
	// exit status 0 is healthy.
	Exec []string
	// TCP is a host:port; a successful connection is healthy.
	TCP string
	// HTTP is a URL; a GET answered 200..399 is healthy.
	HTTP string

	Delay               time.Duration
	Interval            time.Duration // 0 means DefaultHealthInterval
	Timeout             time.Duration // 0 means no timeout
	ConsecutiveFailures int           // 0 means 3
	Grace               time.Duration
	Action              HealthAction
}

// LogPolicy says where a process's output goes. Stdout and Stderr name the
// files; when empty they are Dir/<name>.stdout and Dir/<name>.stderr, with
// Dir defaulting to Options.LogDir. With no directory at all, output is only
// kept in memory (the last lines). A file reaching MaxSize is renamed to
// <file>.1 (older ones shift up) and at most MaxFiles rotated files are kept.
type LogPolicy struct {
	Dir      string
	Stdout   string
	Stderr   string
	MaxSize  int64 // bytes; 0 means DefaultLogMaxSize
	MaxFiles int   // rotated files kept besides the current one; 0 means DefaultLogMaxFiles
}

// Defaults for zero fields.
const (
	DefaultStopGrace      = 5 * time.Second
	DefaultHealthInterval = 10 * time.Second
	DefaultLogMaxSize     = 10 << 20
	DefaultLogMaxFiles    = 5
	// MinBackoffStep is the first non-zero delay of a policy whose
	// InitialBackoff is 0.
	MinBackoffStep = 100 * time.Millisecond
	// SpawnErrorBackoff is the least delay after a failure to start the
	// process at all (missing binary, permission denied), whatever the
	// policy: such failures never become a hot loop.
	SpawnErrorBackoff = time.Second
	// LastLines is how many lines of output each process keeps in memory.
	LastLines = 20
)

// Validate reports the first thing wrong with the spec.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("process has no name")
	}
	if strings.ContainsAny(s.Name, "/\x00") || s.Name == "." || s.Name == ".." {
		return fmt.Errorf("process %q: name must be usable as a file name", s.Name)
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return fmt.Errorf("process %q: empty command", s.Name)
	}
	switch s.Restart.Mode {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("process %q: unknown restart policy %q (want always, on-failure or never)", s.Name, s.Restart.Mode)
	}
	if s.Restart.InitialBackoff < 0 || s.Restart.MaxBackoff < 0 || s.Restart.StableAfter < 0 {
		return fmt.Errorf("process %q: negative restart duration", s.Name)
	}
	if s.Restart.Jitter < 0 || s.Restart.Jitter > 1 {
		return fmt.Errorf("process %q: restart jitter %v not within [0, 1]", s.Name, s.Restart.Jitter)
	}
	if s.Restart.Budget.Restarts < 0 || (s.Restart.Budget.Restarts > 0 && s.Restart.Budget.Window <= 0) {
		return fmt.Errorf("process %q: restart budget needs restarts >= 0 and a positive window", s.Name)
	}
	if s.StopGrace < 0 {
		return fmt.Errorf("process %q: negative stop grace", s.Name)
	}
	if s.Logs.MaxSize < 0 || s.Logs.MaxFiles < 0 {
		return fmt.Errorf("process %q: negative log limits", s.Name)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("process %q: bad environment variable name %q", s.Name, k)
		}
	}
	if h := s.Health; h != nil {
		n := 0
		if len(h.Exec) > 0 {
			n++
		}
		if h.TCP != "" {
			n++
		}
		if h.HTTP != "" {
			n++
		}
		if n != 1 {
			return fmt.Errorf("process %q: health check needs exactly one of exec, tcp, http", s.Name)
		}
		if h.Delay < 0 || h.Interval < 0 || h.Timeout < 0 || h.Grace < 0 || h.ConsecutiveFailures < 0 {
			return fmt.Errorf("process %q: negative health check setting", s.Name)
		}
		switch h.Action {
		case "", HealthRestart, HealthReport:
		default:
			return fmt.Errorf("process %q: unknown health action %q (want restart or report)", s.Name, h.Action)
		}
	}
	return nil
}

// Equal reports whether two specs describe the same process.
func (s *Spec) Equal(o *Spec) bool { return reflect.DeepEqual(s, o) }

func (s *Spec) stopSignal() syscall.Signal {
	if s.StopSignal == 0 {
		return syscall.SIGTERM
	}
	return s.StopSignal
}

func (s *Spec) stopGrace() time.Duration {
	if s.StopGrace == 0 {
		return DefaultStopGrace
	}
	return s.StopGrace
}

// environ is the child's environment: ours, then Env, then extra.
func (s *Spec) environ(extra ...string) []string {
	env := os.Environ()
	idx := make(map[string]int, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	set := func(k, v string) {
		if i, ok := idx[k]; ok {
			env[i] = k + "=" + v
			return
		}
		idx[k] = len(env)
		env = append(env, k+"="+v)
	}
	for k, v := range s.Env {
		set(k, v)
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	return env
}
