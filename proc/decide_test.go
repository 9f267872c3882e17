package proc

import (
	"errors"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		p       RestartPolicy
		attempt int
		r       float64
		want    time.Duration
	}{
		{RestartPolicy{}, 0, 0, 0},
		{RestartPolicy{}, 5, 0.9, 0}, // zero policy: always at once
		{RestartPolicy{MaxBackoff: time.Second}, 0, 0, 0},
		{RestartPolicy{MaxBackoff: time.Second}, 1, 0, MinBackoffStep},
		{RestartPolicy{MaxBackoff: time.Second}, 2, 0, 2 * MinBackoffStep},
		{RestartPolicy{MaxBackoff: time.Second}, 10, 0, time.Second},
		{RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: time.Second}, 0, 0, 10 * ms},
		{RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: time.Second}, 3, 0, 80 * ms},
		{RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: 50 * ms}, 3, 0, 50 * ms},
		{RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: 50 * ms}, 1000, 0, 50 * ms}, // no overflow
		{RestartPolicy{InitialBackoff: 5 * time.Second}, 4, 0, 5 * time.Second},         // max below initial
		{RestartPolicy{InitialBackoff: 100 * ms, MaxBackoff: time.Second, Jitter: 0.5}, 0, 0.5, 125 * ms},
		{RestartPolicy{InitialBackoff: 100 * ms, MaxBackoff: time.Second, Jitter: 0.2}, 10, 0.999, time.Second + 199800*time.Microsecond},
	}
	for _, tt := range tests {
		if got := backoffDelay(tt.p, tt.attempt, tt.r); got != tt.want {
			t.Errorf("backoffDelay(%+v, %d, %v) = %v, want %v", tt.p, tt.attempt, tt.r, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	fail := Exit{Code: 1}
	ok := Exit{}
	type run struct {
		exit    Exit
		lasted  time.Duration
		restart bool
		failed  bool
		delay   time.Duration
	}
	tests := []struct {
		name string
		p    RestartPolicy
		runs []run
	}{
		{"never", RestartPolicy{Mode: RestartNever}, []run{{exit: fail, lasted: ms}}},
		{"on-failure success", RestartPolicy{Mode: RestartOnFailure}, []run{{exit: ok, lasted: ms}}},
		{"on-failure signal", RestartPolicy{Mode: RestartOnFailure}, []run{{exit: Exit{Signal: 9}, lasted: ms, restart: true}}},
		{"always success", RestartPolicy{}, []run{{exit: ok, lasted: ms, restart: true}}},
		{"backoff grows", RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: time.Second}, []run{
			{exit: fail, lasted: ms, restart: true, delay: 10 * ms},
			{exit: fail, lasted: ms, restart: true, delay: 20 * ms},
			{exit: fail, lasted: ms, restart: true, delay: 40 * ms},
		}},
		{"stable run resets", RestartPolicy{InitialBackoff: 10 * ms, MaxBackoff: time.Second, StableAfter: time.Second}, []run{
			{exit: fail, lasted: ms, restart: true, delay: 10 * ms},
			{exit: fail, lasted: ms, restart: true, delay: 20 * ms},
			{exit: fail, lasted: 2 * time.Second, restart: true, delay: 10 * ms},
			{exit: fail, lasted: ms, restart: true, delay: 20 * ms},
		}},
		{"budget", RestartPolicy{Budget: Budget{Restarts: 2, Window: time.Minute}}, []run{
			{exit: fail, lasted: ms, restart: true},
			{exit: fail, lasted: ms, restart: true},
			{exit: fail, lasted: ms, failed: true},
		}},
		{"budget window slides", RestartPolicy{Budget: Budget{Restarts: 2, Window: time.Second}}, []run{
			{exit: fail, lasted: ms, restart: true},
			{exit: fail, lasted: ms, restart: true},
			{exit: fail, lasted: 2 * time.Second, restart: true},
			{exit: fail, lasted: ms, restart: true},
			{exit: fail, lasted: ms, failed: true},
		}},
		{"spawn error backs off", RestartPolicy{}, []run{
			{exit: Exit{Err: errors.New("enoent")}, restart: true, delay: SpawnErrorBackoff},
			{exit: Exit{Err: errors.New("enoent")}, restart: true, delay: 2 * SpawnErrorBackoff},
		}},
	}
	for _, tt := range tests {
		var tr restartTracker
		now := t0
		for i, r := range tt.runs {
			started := now
			now = now.Add(r.lasted)
			d := tr.decide(tt.p, r.exit, started, now, 0)
			if d.restart != r.restart || d.failed != r.failed || d.delay != r.delay {
				t.Errorf("%s: run %d: decide = %+v, want restart=%v failed=%v delay=%v", tt.name, i, d, r.restart, r.failed, r.delay)
			}
			if !d.restart && d.reason == "" {
				t.Errorf("%s: run %d: no reason for not restarting", tt.name, i)
			}
			now = now.Add(d.delay)
		}
	}
}

func TestHealthTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &HealthCheck{ConsecutiveFailures: 2, Grace: 10 * time.Second}
	steps := []struct {
		at    time.Duration
		ok    bool
		event EventType
		act   bool
	}{
		{1 * time.Second, false, "", false}, // in grace, before any success: ignored
		{5 * time.Second, true, EventHealthy, false},
		{6 * time.Second, true, "", false}, // no repeat
		{7 * time.Second, false, EventUnhealthy, false},
		{8 * time.Second, true, EventHealthy, false}, // first success after failures
		{9 * time.Second, false, EventUnhealthy, false},
		{10 * time.Second, false, EventUnhealthy, true},
		{11 * time.Second, false, EventUnhealthy, false}, // report-only: act once
	}
	var h healthTracker
	for i, s := range steps {
		v := h.observe(c, s.ok, t0, t0.Add(s.at))
		if v.event != s.event || v.act != s.act {
			t.Errorf("step %d: observe = %+v, want event=%q act=%v", i, v, s.event, s.act)
		}
	}
	// Without a success, failures count once the grace has passed.
	var g healthTracker
	if v := g.observe(c, false, t0, t0.Add(11*time.Second)); v.event != EventUnhealthy {
		t.Errorf("failure after grace = %+v, want unhealthy", v)
	}
	// The default threshold is 3.
	var d healthTracker
	dc := &HealthCheck{}
	for i := 1; i <= 3; i++ {
		if v := d.observe(dc, false, t0, t0); v.act != (i == 3) {
			t.Errorf("default threshold: failure %d act = %v", i, v.act)
		}
	}
}
