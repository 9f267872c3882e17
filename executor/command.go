package executor

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/proc"
)

// Mesos' HealthCheck defaults (mesos.proto).
const (
	defHealthDelay    = 15 * time.Second
	defHealthInterval = 10 * time.Second
	defHealthTimeout  = 20 * time.Second
	defHealthFailures = 3
	defHealthGrace    = 10 * time.Second
)

// commandTask runs TaskInfo.command as Mesos' command executor would, under proc.
type commandTask struct {
	spec        proc.Spec
	failures    int // consecutive failures that kill the task (0: health is not checked)
	maxDuration time.Duration
}

// procName is the one process of a command task within its supervisor.
const procName = "task"

func newCommandTask(info *mesos.TaskInfo) (*commandTask, error) {
	cmd := info.Command
	argv, err := commandArgv(cmd)
	if err != nil {
		return nil, err
	}
	if u := cmd.GetUser(); u != "" {
		if err := checkUser(u); err != nil {
			return nil, err
		}
	}
	ct := &commandTask{spec: proc.Spec{
		Name:    procName,
		Argv:    argv,
		Env:     commandEnv(cmd.Environment),
		Restart: proc.RestartPolicy{Mode: proc.RestartNever},
		// The executor escalates kills itself (a second KILL may shorten the grace).
		StopGrace: time.Hour,
	}}
	if hc := info.HealthCheck; hc != nil {
		check, failures, err := healthCheck(hc)
		if err != nil {
			return nil, fmt.Errorf("task %s: health_check: %w", info.TaskID.Value, err)
		}
		ct.spec.Health = check
		ct.failures = failures
	}
	if mct := info.MaxCompletionTime; mct != nil {
		ct.maxDuration = time.Duration(mct.Nanoseconds)
		if ct.maxDuration <= 0 {
			ct.maxDuration = time.Nanosecond
		}
	}
	return ct, nil
}

// commandArgv turns CommandInfo into an argv: shell (the default) runs value under
// /bin/sh -c; otherwise value is the program and arguments its argv.
func commandArgv(cmd *mesos.CommandInfo) ([]string, error) {
	value := cmd.GetValue()
	if cmd.Shell == nil || *cmd.Shell {
		if strings.TrimSpace(value) == "" {
			return nil, fmt.Errorf("command: shell command is empty")
		}
		return []string{"/bin/sh", "-c", value}, nil
	}
	if value == "" {
		return nil, fmt.Errorf("command: value (the program) is empty with shell=false")
	}
	argv := []string{value}
	if len(cmd.Arguments) > 1 {
		argv = append(argv, cmd.Arguments[1:]...)
	}
	return argv, nil
}

// commandEnv returns CommandInfo's variables (they override the executor's). Unresolved
// secrets are skipped, as Mesos does.
func commandEnv(env *mesos.Environment) map[string]string {
	m := map[string]string{}
	if env == nil {
		return m
	}
	for _, v := range env.Variables {
		if v.Value != nil {
			m[v.Name] = *v.Value
		}
	}
	return m
}

// checkUser accepts the executor's own user; switching users would need root and is not
// offered.
func checkUser(name string) error {
	me, err := user.Current()
	if err != nil {
		return fmt.Errorf("command: user %q: %w", name, err)
	}
	if me.Username == name {
		return nil
	}
	if _, err := user.Lookup(name); err != nil {
		return fmt.Errorf("command: user %q does not exist", name)
	}
	return fmt.Errorf("command: user %q: the executor runs as %q and cannot switch users", name, me.Username)
}

func secs(p *float64, def time.Duration) time.Duration {
	if p == nil {
		return def
	}
	return time.Duration(*p * float64(time.Second))
}

// healthCheck translates Mesos' HealthCheck into proc's (same semantics: delay, interval,
// timeout, grace) and returns the consecutive failures that kill the task.
func healthCheck(hc *mesos.HealthCheck) (*proc.HealthCheck, int, error) {
	c := &proc.HealthCheck{
		Delay:    secs(hc.DelaySeconds, defHealthDelay),
		Interval: secs(hc.IntervalSeconds, defHealthInterval),
		Timeout:  secs(hc.TimeoutSeconds, defHealthTimeout),
		Grace:    secs(hc.GracePeriodSeconds, defHealthGrace),
		Action:   proc.HealthReport,
	}
	failures := defHealthFailures
	if hc.ConsecutiveFailures != nil {
		failures = int(*hc.ConsecutiveFailures)
	}
	if failures <= 0 {
		failures = 1
	}
	c.ConsecutiveFailures = failures
	if c.Interval <= 0 {
		return nil, 0, fmt.Errorf("interval_seconds must be positive")
	}
	host := func(p *mesos.NetworkInfo_Protocol) string {
		if p != nil && *p == mesos.IPv6 {
			return "::1"
		}
		return "127.0.0.1"
	}
	switch hc.Type {
	case mesos.HealthCheck_COMMAND:
		if hc.Command == nil {
			return nil, 0, fmt.Errorf("type COMMAND without command")
		}
		argv, err := commandArgv(hc.Command)
		if err != nil {
			return nil, 0, err
		}
		c.Exec = argv
	case mesos.HealthCheck_HTTP:
		if hc.HTTP == nil || hc.HTTP.Port == 0 {
			return nil, 0, fmt.Errorf("type HTTP without http.port")
		}
		scheme := hc.HTTP.GetScheme()
		if scheme == "" {
			scheme = "http"
		}
		path := hc.HTTP.GetPath()
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		c.HTTP = scheme + "://" + net.JoinHostPort(host(hc.HTTP.Protocol), strconv.Itoa(int(hc.HTTP.Port))) + path
	case mesos.HealthCheck_TCP:
		if hc.TCP == nil || hc.TCP.Port == 0 {
			return nil, 0, fmt.Errorf("type TCP without tcp.port")
		}
		c.TCP = net.JoinHostPort(host(hc.TCP.Protocol), strconv.Itoa(int(hc.TCP.Port)))
	default:
		return nil, 0, fmt.Errorf("unsupported type %s", hc.Type)
	}
	return c, failures, nil
}

// healthVerdict is Mesos' reporting rule for one health event: healthy is reported on the
// first success and the first after failures (proc publishes exactly those), unhealthy on
// every counted failure; the task is killed after `limit` counted failures in a row.
func healthVerdict(healthy bool, consecutive, limit int) (report bool, kill bool, next int) {
	if healthy {
		return true, false, 0
	}
	next = consecutive + 1
	return true, limit > 0 && next >= limit, next
}

func (c *commandTask) run(ctx context.Context, tc *taskControl) outcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	spec := c.spec
	spec.Dir = tc.Sandbox()
	spec.Logs = proc.LogPolicy{Dir: tc.Dir, Stdout: filepath.Join(tc.Dir, "stdout"), Stderr: filepath.Join(tc.Dir, "stderr")}
	if err := os.MkdirAll(tc.Dir, 0o755); err != nil {
		return outcome{state: mesos.TASK_FAILED, message: fmt.Sprintf("task directory: %v", err)}
	}
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	spec.Env["MESOS_TASK_ID"] = tc.ID()
	for k, v := range c.spec.Env { // the task's own variables win
		spec.Env[k] = v
	}
	sup := proc.New(proc.Options{LogDir: tc.Dir, ShutdownWait: 5 * time.Second})
	events, unsubscribe := sup.Subscribe()
	defer unsubscribe()
	if err := sup.Start(spec); err != nil {
		return outcome{state: mesos.TASK_FAILED, message: fmt.Sprintf("command: %v", err)}
	}
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(ctx) }()
	defer func() { cancel(); <-supDone }()

	var (
		pid          int
		consecutive  int
		healthKilled bool
		maxKilled    bool
		force        = stoppedTimer()
		maxTimer     = stoppedTimer()
	)
	defer force.Stop()
	defer maxTimer.Stop()
	if c.maxDuration > 0 {
		maxTimer.Reset(c.maxDuration)
	}
	signal := func(sig syscall.Signal) {
		if pid > 0 {
			_ = syscall.Kill(-pid, sig) // the task's process group
			if sig == syscall.SIGTERM {
				_ = syscall.Kill(-pid, syscall.SIGCONT)
			}
		}
	}
	killing := false
	startKill := func() {
		deadline, ok := tc.KillDeadline()
		if !ok {
			return
		}
		if !killing {
			killing = true
			signal(syscall.SIGTERM)
		}
		force.Reset(time.Until(deadline))
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return outcome{state: mesos.TASK_FAILED, message: "the task's supervisor stopped"}
			}
			switch ev.Type {
			case proc.EventStarted:
				pid = ev.Pid
				if _, asked := tc.KillDeadline(); asked {
					killing = false // the signal could not be sent before there was a process
					startKill()
				} else {
					tc.Running("")
				}
			case proc.EventHealthy, proc.EventUnhealthy:
				if killing {
					continue // health checking stops when the kill starts
				}
				healthy := ev.Type == proc.EventHealthy
				report, kill, next := healthVerdict(healthy, consecutive, c.failures)
				consecutive = next
				if report {
					tc.Health(healthy, ev.Reason)
				}
				if kill {
					healthKilled = true
					tc.Logf("killed after %d consecutive failed health checks", consecutive)
					tc.e.requestKill(tc.t, killGrace(nil, tc.Info().KillPolicy, tc.e.cfg.DefaultKillWait))
				}
			case proc.EventExited, proc.EventFailed, proc.EventStopped:
				if ev.Type == proc.EventExited && ev.Backoff > 0 {
					continue
				}
				return c.outcome(ev, killing, healthKilled, maxKilled)
			}
		case <-tc.Kills():
			startKill()
		case <-force.C:
			signal(syscall.SIGKILL)
		case <-maxTimer.C:
			maxKilled = true
			tc.Logf("max_completion_time (%s) reached", c.maxDuration)
			killing = true
			signal(syscall.SIGKILL)
		}
	}
}

func (c *commandTask) outcome(ev proc.Event, killed, healthKilled, maxKilled bool) outcome {
	exit := ev.Exit
	desc := "the command ended"
	if exit != nil {
		desc = "Command " + exit.String()
		if exit.Err != nil {
			desc = "Command could not start: " + exit.Err.Error()
		}
	}
	if ev.Reason != "" && (exit == nil || exit.Err == nil) {
		desc += " (" + ev.Reason + ")"
	}
	switch {
	case maxKilled:
		return outcome{state: mesos.TASK_FAILED, reason: mesos.REASON_MAX_COMPLETION_TIME_REACHED.Enum(),
			message: "max_completion_time reached; " + desc}
	case killed:
		o := outcome{state: mesos.TASK_KILLED, message: desc}
		if healthKilled {
			f := false
			o.healthy = &f
			o.message = "killed after failing health checks; " + desc
		}
		return o
	case exit != nil && exit.Success():
		return outcome{state: mesos.TASK_FINISHED, message: desc}
	default:
		msg := desc
		if len(ev.Lines) > 0 {
			msg += "; last output:\n" + strings.Join(ev.Lines, "\n")
		}
		return outcome{state: mesos.TASK_FAILED, message: msg}
	}
}
