package proc

import (
	"errors"
	"syscall"
	"time"
)

// State is where a process is in its life.
type State string

// Process states.
const (
	StateStarting State = "starting" // being forked
	StateRunning  State = "running"  // alive
	StateBackoff  State = "backoff"  // exited, waiting to be restarted
	StateStopping State = "stopping" // stop signal sent, waiting for it to exit
	StateStopped  State = "stopped"  // stopped on request
	StateExited   State = "exited"   // exited and not to be restarted (policy)
	StateFailed   State = "failed"   // gave up: restart budget exhausted
)

// Health is the interpretation of a process's health checks.
type Health string

// Health values.
const (
	HealthUnknown   Health = ""          // no check, or no result yet
	HealthHealthy   Health = "healthy"   // last counted check passed
	HealthUnhealthy Health = "unhealthy" // last counted check failed
)

// Exit is how a process ended. Signal is non-zero when it was killed by a
// signal; Code is its exit status otherwise. Err is set when it could not be
// started at all.
type Exit struct {
	Code   int
	Signal syscall.Signal
	Err    error
}

// Success reports a zero exit status.
func (e Exit) Success() bool { return e.Err == nil && e.Signal == 0 && e.Code == 0 }

func (e Exit) String() string {
	switch {
	case e.Err != nil:
		return "start failed: " + e.Err.Error()
	case e.Signal != 0:
		return "killed by signal " + signalName(e.Signal)
	default:
		return "exit status " + itoa(e.Code)
	}
}

// Status is a snapshot of one process.
type Status struct {
	Name      string
	State     State
	Pid       int       // 0 when not running
	StartTime time.Time // of the current or last run
	Restarts  int       // restarts since the process was first started
	LastExit  *Exit     // nil before the first exit
	Health    Health
	Detach    bool
	// CPU is the user+system CPU time of the running process, and RSS its
	// resident memory in bytes (both 0 when unknown or not running).
	CPU time.Duration
	RSS uint64
}

// EventType names a state change.
type EventType string

// Event types.
const (
	EventStarted   EventType = "started"   // a run began (Pid set)
	EventExited    EventType = "exited"    // a run ended (Exit set); may be followed by a restart
	EventHealthy   EventType = "healthy"   // first passing check, or first after failures
	EventUnhealthy EventType = "unhealthy" // every counted failing check
	EventFailed    EventType = "failed"    // gave up (Reason and Lines set)
	EventStopped   EventType = "stopped"   // stopped on request, or finished for good (Exit set if it ran)
)

// Event is published on every state change.
type Event struct {
	Type     EventType
	Name     string
	Time     time.Time
	Pid      int
	Exit     *Exit
	Restarts int
	// WillRestart is set on an exited event followed by a restart after
	// Backoff.
	WillRestart bool
	Backoff     time.Duration
	// Reason explains unhealthy, failed and some exited events.
	Reason string
	// Lines are the last lines of output (stdout and stderr interleaved),
	// set on failed events and on exits that are not followed by a restart.
	Lines []string
}

// Options configure a Supervisor.
type Options struct {
	// Specs are started when Run begins.
	Specs []Spec
	// LogDir is the default directory for log files (see LogPolicy).
	LogDir string
	// StopDetached makes shutdown stop detached processes too.
	StopDetached bool
	// NoGuardian disables the guardian process (see the package doc); then
	// only the parent-death signal protects against the supervisor's death,
	// and grandchildren may survive it.
	NoGuardian bool
	// ShutdownWait bounds the wait for processes after SIGKILL (a process in
	// uninterruptible sleep); 0 means 5 s.
	ShutdownWait time.Duration
	// Now and Rand replace the clock and the jitter source in tests.
	Now  func() time.Time
	Rand func() float64
}

// Errors returned by the Supervisor's methods.
var (
	ErrUnknown = errors.New("no such process")
	ErrExists  = errors.New("process already exists")
	ErrClosed  = errors.New("supervisor is not running")
)
