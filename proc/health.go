package proc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// scheduleCheck arms p's next health check d from now. Each process has at
// most one timer; nothing runs between checks.
func (s *Supervisor) scheduleCheck(p *process, d time.Duration) {
	run := p.run
	p.htimer = s.after(d, func() {
		p.htimer = nil
		if p.run != run || p.state != StateRunning || s.closing {
			return
		}
		h := p.spec.Health
		spec := p.spec
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.check(&spec, h)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.onCheck(p, run, err)
		}()
	})
}

// onCheck interprets one result; s.mu is held.
func (s *Supervisor) onCheck(p *process, run int, err error) {
	if p.run != run || p.state != StateRunning || s.closing {
		return
	}
	h := p.spec.Health
	v := p.htrack.observe(h, err == nil, p.start, s.now())
	if v.event != "" {
		p.health = p.htrack.last
		ev := Event{Type: v.event, Name: p.spec.Name, Pid: p.pid, Restarts: p.restarts}
		if err != nil {
			ev.Reason = err.Error()
		}
		if v.act {
			ev.Reason = fmt.Sprintf("%d consecutive health check failures; last: %v", h.failureThreshold(), err)
		}
		s.emit(ev)
	}
	if v.act && h.Action != HealthReport {
		// Mesos stops checking once the kill starts.
		s.stopLocked(p)
		p.healthHit = true
		return
	}
	s.scheduleCheck(p, h.interval())
}

// check runs one health check; nil means healthy.
func (s *Supervisor) check(spec *Spec, h *HealthCheck) error {
	ctx := s.hctx
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	switch {
	case h.TCP != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h.TCP)
		if err != nil {
			return fmt.Errorf("tcp check: %w", err)
		}
		c.Close()
		return nil
	case h.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTP, nil)
		if err != nil {
			return fmt.Errorf("http check: %w", err)
		}
		// Like Mesos: follow redirects, do not verify TLS.
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return fmt.Errorf("http check: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("http check: status %d", resp.StatusCode)
		}
		return nil
	default:
		return s.execCheck(ctx, spec, h.Exec)
	}
}

// execCheck runs the command in its own process group, through the shared
// spawner and reaper; a timeout kills the group.
func (s *Supervisor) execCheck(ctx context.Context, spec *Spec, argv []string) error {
	env := spec.environ(TreeEnv + "=" + s.token)
	path, err := lookPath(argv[0], envValue(env, "PATH"))
	if err != nil {
		return fmt.Errorf("exec check: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("exec check: %w", err)
	}
	done := make(chan unix.WaitStatus, 1)
	pid, err := spawn(&spawnReq{path: path, argv: argv, env: env, dir: spec.Dir,
		files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}, pdeath: true,
		onExit: func(ws unix.WaitStatus) { done <- ws }})
	devnull.Close()
	if err != nil {
		return fmt.Errorf("exec check: start %s: %w", argv[0], err)
	}
	select {
	case ws := <-done:
		if e := exitOf(ws); !e.Success() {
			return fmt.Errorf("exec check: %v", e)
		}
		return nil
	case <-ctx.Done():
		killGroup(pid, unix.SIGKILL)
		<-done
		return fmt.Errorf("exec check: %w", ctx.Err())
	}
}
