package executor

import (
	"fmt"
	"strings"
	"time"
)

// Environment variables the Mesos agent sets for an executor.
const (
	EnvAgentEndpoint       = "MESOS_AGENT_ENDPOINT"
	EnvFrameworkID         = "MESOS_FRAMEWORK_ID"
	EnvExecutorID          = "MESOS_EXECUTOR_ID"
	EnvDirectory           = "MESOS_DIRECTORY"
	EnvSandbox             = "MESOS_SANDBOX"
	EnvCheckpoint          = "MESOS_CHECKPOINT"
	EnvRecoveryTimeout     = "MESOS_RECOVERY_TIMEOUT"
	EnvSubscriptionBackoff = "MESOS_SUBSCRIPTION_BACKOFF_MAX"
	EnvShutdownGrace       = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"
	EnvAuthToken           = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"
	EnvAgentID             = "MESOS_SLAVE_ID"
	// EnvWire is egret's own: "json" makes the executor speak JSON instead of protobuf.
	EnvWire = "EGRET_EXECUTOR_WIRE"
	// EnvAckTimeout and EnvNoTaskTimeout (egret's own, Mesos duration format) override the
	// exit fail-safe (60secs) and the no-task timer (60secs).
	EnvAckTimeout    = "EGRET_EXECUTOR_ACK_TIMEOUT"
	EnvNoTaskTimeout = "EGRET_EXECUTOR_NO_TASK_TIMEOUT"
)

// Wire formats of the executor API.
const (
	WireProtobuf = "protobuf"
	WireJSON     = "json"
)

// Config is what the executor learns from its agent's environment.
type Config struct {
	AgentEndpoint   string // host:port of the agent
	FrameworkID     string
	ExecutorID      string
	AgentID         string // informational only; never put into updates
	Directory       string // host path of the sandbox
	Sandbox         string // sandbox as seen by the executor (MESOS_SANDBOX, else MESOS_DIRECTORY)
	Checkpoint      bool
	RecoveryTimeout time.Duration // only meaningful with Checkpoint
	BackoffMax      time.Duration // only meaningful with Checkpoint
	ShutdownGrace   time.Duration
	AuthToken       string // sent as a bearer token; never passed to children
	Wire            string // WireProtobuf or WireJSON

	// ChildEnv is the environment tasks start from: the executor's own, minus the token.
	ChildEnv []string

	// Timers with Mesos' defaults, overridable for tests (zero means the default).
	AckTimeout      time.Duration // fail-safe: exit this long after the last terminal update if ACKs are missing (60s)
	NoTaskTimeout   time.Duration // exit if no task arrives this long after subscribing (60s)
	SubscribeRetry  time.Duration // resend SUBSCRIBE at this interval until subscribed (1s)
	DefaultKillWait time.Duration // grace without any kill policy (3s)
}

// EnvError lists every problem found in the agent's environment at once.
type EnvError struct {
	Problems []string
}

func (e *EnvError) Error() string {
	return "executor environment: " + strings.Join(e.Problems, "; ")
}

// ConfigFromEnv reads the executor's configuration from env (os.Environ form). Every missing
// or malformed variable is reported in one *EnvError.
func ConfigFromEnv(env []string) (Config, error) {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var problems []string
	required := func(name string) string {
		v := vars[name]
		if v == "" {
			problems = append(problems, name+" is not set")
		}
		return v
	}
	duration := func(name string, need bool) time.Duration {
		v, ok := vars[name]
		if !ok || v == "" {
			if need {
				problems = append(problems, name+" is not set")
			}
			return 0
		}
		d, err := ParseDuration(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		} else if d <= 0 {
			problems = append(problems, fmt.Sprintf("%s=%q: must be positive", name, v))
		}
		return d
	}

	cfg := Config{
		AgentEndpoint: required(EnvAgentEndpoint),
		FrameworkID:   required(EnvFrameworkID),
		ExecutorID:    required(EnvExecutorID),
		Directory:     required(EnvDirectory),
		Sandbox:       vars[EnvSandbox],
		AgentID:       vars[EnvAgentID],
		AuthToken:     vars[EnvAuthToken],
		Wire:          WireProtobuf,
	}
	if cfg.Sandbox == "" {
		cfg.Sandbox = cfg.Directory
	}
	if ep := cfg.AgentEndpoint; ep != "" {
		if _, port, ok := strings.Cut(ep, ":"); !ok || port == "" || strings.Contains(ep, "/") {
			problems = append(problems, fmt.Sprintf("%s=%q: want host:port", EnvAgentEndpoint, ep))
		}
	}
	switch v := vars[EnvCheckpoint]; v {
	case "1":
		cfg.Checkpoint = true
	case "0", "":
	default:
		problems = append(problems, fmt.Sprintf("%s=%q: want 0 or 1", EnvCheckpoint, v))
	}
	cfg.ShutdownGrace = duration(EnvShutdownGrace, true)
	cfg.RecoveryTimeout = duration(EnvRecoveryTimeout, cfg.Checkpoint)
	cfg.BackoffMax = duration(EnvSubscriptionBackoff, cfg.Checkpoint)
	cfg.AckTimeout = duration(EnvAckTimeout, false)
	cfg.NoTaskTimeout = duration(EnvNoTaskTimeout, false)
	switch v := vars[EnvWire]; v {
	case "", WireProtobuf:
	case WireJSON:
		cfg.Wire = WireJSON
	default:
		problems = append(problems, fmt.Sprintf("%s=%q: want protobuf or json", EnvWire, v))
	}
	if len(problems) > 0 {
		return Config{}, &EnvError{Problems: problems}
	}
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvAuthToken+"=") {
			cfg.ChildEnv = append(cfg.ChildEnv, kv)
		}
	}
	return cfg, nil
}

// withDefaults fills the zero timers with Mesos' values.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.AckTimeout, 60*time.Second)
	set(&c.NoTaskTimeout, 60*time.Second)
	set(&c.SubscribeRetry, time.Second)
	set(&c.DefaultKillWait, 3*time.Second)
	set(&c.ShutdownGrace, 5*time.Second)
	if c.Wire == "" {
		c.Wire = WireProtobuf
	}
	if c.Sandbox == "" {
		c.Sandbox = c.Directory
	}
	return c
}
