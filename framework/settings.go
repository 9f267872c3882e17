package framework

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// Configuration keys of the mesos cluster. Heron's own are heron.mesos.master.uri,
// heron.mesos.framework.staging.timeout.ms and heron.package.core.uri; the rest are egret's.
const (
	KeyMaster            = "heron.mesos.master.uri"
	KeyStagingTimeout    = "heron.mesos.framework.staging.timeout.ms"
	KeyCoreURI           = "heron.package.core.uri"
	KeyCoreChecksum      = "heron.package.core.checksum"
	KeyEgretURI          = "heron.mesos.egret.uri"
	KeyEgretChecksum     = "heron.mesos.egret.checksum"
	KeyFrameworkName     = "heron.mesos.framework.name"
	KeyFrameworkUser     = "heron.mesos.framework.user"
	KeyFrameworkRole     = "heron.mesos.framework.role"
	KeyPrincipal         = "heron.mesos.framework.principal"
	KeySecret            = "heron.mesos.framework.secret"
	KeyFailoverTimeout   = "heron.mesos.framework.failover.timeout"
	KeyReconcileInterval = "heron.mesos.reconciliation.interval"
	KeyBackoffMin        = "heron.mesos.relaunch.backoff.min"
	KeyBackoffMax        = "heron.mesos.relaunch.backoff.max"
	KeyBudget            = "heron.mesos.relaunch.budget"
	KeyAPIAddress        = "heron.mesos.scheduler.http.address"
	KeyToken             = "heron.mesos.scheduler.token"
	KeyJavaHome          = "heron.directory.sandbox.java.home"
	KeyWorkingDirectory  = "heron.scheduler.mesos.scheduler.working.directory"
)

// Settings are the mesos cluster's choices, read and checked once.
type Settings struct {
	Masters                    []string
	StagingTimeout             time.Duration
	CoreURI, CoreChecksum      string
	EgretURI, EgretChecksum    string
	Name, User, Role           string
	Principal, Secret          string
	FailoverTimeout            time.Duration
	ReconcileInterval          time.Duration
	Policy                     Policy
	APIAddress, Token          string
	JavaHome, WorkingDirectory string
	// LockWait is how long a starting scheduler waits for the topology's
	// lock: on ZooKeeper a SIGKILLed scheduler's lock lasts until its
	// session expires.
	LockWait time.Duration
}

// Getter is what Settings needs of a configuration (config.Config has it).
type Getter interface {
	String(key string) string
	Duration(key string, def time.Duration) (time.Duration, error)
}

// ReadSettings reads the mesos keys; every problem names its key.
func ReadSettings(c Getter) (Settings, error) {
	var s Settings
	var probs []string
	dur := func(key string, def time.Duration) time.Duration {
		d, err := c.Duration(key, def)
		if err != nil {
			probs = append(probs, err.Error())
		} else if d < 0 {
			probs = append(probs, fmt.Sprintf("%s: %v is negative", key, d))
		}
		return d
	}
	for _, m := range strings.Split(c.String(KeyMaster), ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if strings.HasPrefix(m, "zk://") {
			probs = append(probs, fmt.Sprintf("%s: %q: finding the leader through ZooKeeper is not supported; list the masters (host:port,host:port)", KeyMaster, m))
			continue
		}
		u, err := masterURL(m)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", KeyMaster, err))
			continue
		}
		s.Masters = append(s.Masters, u)
	}
	if len(s.Masters) == 0 && len(probs) == 0 {
		probs = append(probs, KeyMaster+" is not set: name the Mesos master (host:port)")
	}
	s.StagingTimeout = dur(KeyStagingTimeout, 10*time.Second)
	if s.StagingTimeout < 2*time.Second {
		s.StagingTimeout = 2 * time.Second // registration takes a round trip or two
	}
	s.CoreURI, s.CoreChecksum = c.String(KeyCoreURI), c.String(KeyCoreChecksum)
	s.EgretURI, s.EgretChecksum = c.String(KeyEgretURI), c.String(KeyEgretChecksum)
	if s.CoreURI == "" {
		probs = append(probs, KeyCoreURI+" is not set: the agents fetch the Heron release from it")
	}
	if s.EgretURI == "" {
		probs = append(probs, KeyEgretURI+" is not set: the agents fetch egret (make dist) from it")
	}
	for _, kv := range [][2]string{{KeyCoreChecksum, s.CoreChecksum}, {KeyEgretChecksum, s.EgretChecksum}} {
		if kv[1] != "" && !validChecksum(kv[1]) {
			probs = append(probs, fmt.Sprintf("%s: %q: want sha256:<64 hex digits>", kv[0], kv[1]))
		}
	}
	s.Name = c.String(KeyFrameworkName)
	s.User = c.String(KeyFrameworkUser)
	if s.User == "" {
		if u, err := user.Current(); err == nil {
			s.User = u.Username
		}
	}
	s.Role = c.String(KeyFrameworkRole)
	if s.Role == "" {
		s.Role = "*"
	}
	s.Principal, s.Secret = c.String(KeyPrincipal), c.String(KeySecret)
	if s.Secret != "" && s.Principal == "" {
		probs = append(probs, KeySecret+" is set without "+KeyPrincipal)
	}
	s.FailoverTimeout = dur(KeyFailoverTimeout, 7*24*time.Hour)
	s.ReconcileInterval = dur(KeyReconcileInterval, 10*time.Minute)
	s.Policy = DefaultPolicy
	s.Policy.BackoffMin = dur(KeyBackoffMin, DefaultPolicy.BackoffMin)
	s.Policy.BackoffMax = dur(KeyBackoffMax, DefaultPolicy.BackoffMax)
	if s.Policy.BackoffMin <= 0 || s.Policy.BackoffMax < s.Policy.BackoffMin {
		probs = append(probs, fmt.Sprintf("%s/%s: want 0 < min <= max, got %v/%v", KeyBackoffMin, KeyBackoffMax, s.Policy.BackoffMin, s.Policy.BackoffMax))
	}
	if b := c.String(KeyBudget); b != "" {
		n, w, err := parseBudget(b)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", KeyBudget, err))
		}
		s.Policy.Budget, s.Policy.Window = n, w
	}
	s.APIAddress = c.String(KeyAPIAddress)
	if s.APIAddress == "" {
		s.APIAddress = "127.0.0.1:0"
	}
	s.Token = c.String(KeyToken)
	if err := CheckListen(s.APIAddress, s.Token); err != nil {
		probs = append(probs, fmt.Sprintf("%s: %v", KeyAPIAddress, err))
	}
	s.LockWait = 3 * time.Second
	class, conn := c.String("heron.class.state.manager"), c.String("heron.statemgr.connection.string")
	if !strings.EqualFold(conn, "LOCALMODE") && !strings.Contains(class, "localfs") && !strings.Contains(class, "LocalFileSystem") {
		s.LockWait = dur("heron.statemgr.zookeeper.session.timeout.ms", 30*time.Second) + 5*time.Second
	}
	s.JavaHome = c.String(KeyJavaHome)
	s.WorkingDirectory = c.String(KeyWorkingDirectory)
	if len(probs) > 0 {
		return Settings{}, fmt.Errorf("mesos configuration: %s", strings.Join(probs, "; "))
	}
	return s, nil
}

// parseBudget reads N/window ("10/10m").
func parseBudget(s string) (int, time.Duration, error) {
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want N/window, e.g. 10/10m", s)
	}
	k, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || k < 1 {
		return 0, 0, fmt.Errorf("%q: %q is not a positive count", s, n)
	}
	d, err := time.ParseDuration(strings.TrimSpace(w))
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("%q: %q is not a positive duration", s, w)
	}
	return k, d, nil
}

func validChecksum(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
