package proc

import (
	"fmt"
	"time"
)

// backoffDelay is the delay before a restart, given the number of restarts
// since the last stable run and a random number r in [0, 1) for the jitter.
// The delay doubles from InitialBackoff (from MinBackoffStep after a first
// immediate restart when InitialBackoff is 0) up to the larger of MaxBackoff
// and InitialBackoff; the jitter then adds up to Jitter of it.
func backoffDelay(p RestartPolicy, attempt int, r float64) time.Duration {
	ceiling := max(p.MaxBackoff, p.InitialBackoff)
	var d time.Duration
	switch {
	case p.InitialBackoff > 0:
		d = doubled(p.InitialBackoff, attempt, ceiling)
	case attempt == 0:
		d = 0
	default:
		d = doubled(MinBackoffStep, attempt-1, ceiling)
	}
	d = min(d, ceiling)
	return d + time.Duration(float64(d)*p.Jitter*r)
}

// doubled returns base·2^n, saturating at ceiling.
func doubled(base time.Duration, n int, ceiling time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	return d
}

// restartTracker remembers what the restart decision needs across runs.
type restartTracker struct {
	attempt int         // restarts since the last stable run
	recent  []time.Time // restarts within the budget window
}

// decision is what to do after a run ended.
type decision struct {
	restart bool
	delay   time.Duration
	failed  bool   // budget exhausted
	reason  string // why not restarted, or why failed
}

// decide applies the policy to a run that started at started and ended with
// exit at now, and records the restart in t when there is one.
func (t *restartTracker) decide(p RestartPolicy, exit Exit, started, now time.Time, r float64) decision {
	switch {
	case p.Mode == RestartNever:
		return decision{reason: "restart policy is never"}
	case p.Mode == RestartOnFailure && exit.Success():
		return decision{reason: "exited successfully under restart policy on-failure"}
	}
	if exit.Err == nil && p.StableAfter > 0 && now.Sub(started) >= p.StableAfter {
		t.attempt = 0
	}
	if b := p.Budget; b.Restarts > 0 {
		keep := t.recent[:0]
		for _, at := range t.recent {
			if now.Sub(at) < b.Window {
				keep = append(keep, at)
			}
		}
		t.recent = keep
		if len(t.recent) >= b.Restarts {
			return decision{failed: true, reason: fmt.Sprintf("restarted %d times within %v (budget); last run: %v", len(t.recent), b.Window, exit)}
		}
		t.recent = append(t.recent, now)
	}
	d := backoffDelay(p, t.attempt, r)
	if exit.Err != nil {
		d = max(d, SpawnErrorBackoff*time.Duration(1<<min(t.attempt, 5)))
	}
	t.attempt++
	return decision{restart: true, delay: d}
}

// reset forgets past restarts (an explicit Restart).
func (t *restartTracker) reset() { *t = restartTracker{} }

// healthTracker interprets check results with the Mesos semantics.
type healthTracker struct {
	failures  int  // consecutive counted failures
	succeeded bool // a check has passed in this run
	last      Health
}

// healthVerdict is what one check result means.
type healthVerdict struct {
	event EventType // EventHealthy, EventUnhealthy or "" (nothing to report)
	act   bool      // the failure threshold was just reached
}

// observe takes one result at now for a run that started at started.
func (h *healthTracker) observe(c *HealthCheck, ok bool, started, now time.Time) healthVerdict {
	if ok {
		h.failures = 0
		h.succeeded = true
		if h.last != HealthHealthy {
			h.last = HealthHealthy
			return healthVerdict{event: EventHealthy}
		}
		return healthVerdict{}
	}
	if !h.succeeded && now.Sub(started) < c.Grace {
		return healthVerdict{} // within the grace period, before the first success
	}
	h.failures++
	h.last = HealthUnhealthy
	return healthVerdict{event: EventUnhealthy, act: h.failures == c.failureThreshold()}
}

func (c *HealthCheck) failureThreshold() int {
	if c.ConsecutiveFailures <= 0 {
		return 3
	}
	return c.ConsecutiveFailures
}

func (c *HealthCheck) interval() time.Duration {
	if c.Interval <= 0 {
		return DefaultHealthInterval
	}
	return c.Interval
}
