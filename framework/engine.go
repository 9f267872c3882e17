package framework

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// EngineConfig configures the Mesos side of the framework.
type EngineConfig struct {
	// Masters are the masters' URLs or host:port, tried in turn until one
	// leads or redirects to the leader.
	Masters []string
	// FrameworkInfo: name, user, role, principal, hostname, webui URL. The
	// engine sets checkpointing, the failover timeout and the saved id.
	Name, User, Role, Principal, Secret, Hostname, WebUIURL string
	FailoverTimeout                                         time.Duration
	// Executor runs every task; the engine sets its executor and framework
	// ids (one executor per task).
	Executor mesos.ExecutorInfo
	// TaskData builds a container's task data once its ports are known.
	TaskData func(c Container) ([]byte, error)
	// Topology names the tasks.
	Topology string
	Store    Store
	Policy   Policy
	// Refuse is the decline filter while containers wait (default 5s); Idle
	// the one when nothing waits (default 5m).
	Refuse, Idle time.Duration
	// ReconcileRetry is the first interval of explicit reconciliation
	// retries (default 5s, doubling to 1m); ReconcileInterval the period of
	// implicit reconciliation once every task is known (default 10m).
	ReconcileRetry, ReconcileInterval time.Duration
	// SubscribeBackoffMax caps the delay between subscription attempts (default 30s).
	SubscribeBackoffMax time.Duration
	Log                 io.Writer
	// HTTPTimeout bounds each non-streaming call (default 10s).
	HTTPTimeout time.Duration
}

// Engine runs a topology's containers as Mesos tasks. Run owns its state;
// the other methods talk to Run's loop.
type Engine struct {
	cfg  EngineConfig
	log  *log.Logger
	reqs chan func(*loop)

	mu      sync.Mutex
	snap    Snapshot
	changed chan struct{} // closed and replaced at every new snapshot
}

// Snapshot is the engine's state as Status shows it.
type Snapshot struct {
	FrameworkID string
	Subscribed  bool
	Master      string
	Reconciled  bool
	Suppressed  bool
	Killing     bool
	// LastError is the last failure to reach the master, cleared by a subscription.
	LastError  string
	Containers []Container
}

// ErrKilled ends Run after Kill tore the framework down.
var ErrKilled = errors.New("framework torn down")

// NewEngine checks the configuration; nothing is contacted until Run.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("framework: no Mesos master given")
	}
	for i, m := range cfg.Masters {
		u, err := masterURL(m)
		if err != nil {
			return nil, err
		}
		cfg.Masters[i] = u
	}
	if cfg.Store == nil {
		return nil, errors.New("framework: no store for the framework id")
	}
	if cfg.TaskData == nil {
		return nil, errors.New("framework: no task data builder")
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Refuse, 5*time.Second)
	def(&cfg.Idle, 5*time.Minute)
	def(&cfg.ReconcileRetry, 5*time.Second)
	def(&cfg.ReconcileInterval, 10*time.Minute)
	def(&cfg.SubscribeBackoffMax, 30*time.Second)
	def(&cfg.HTTPTimeout, 10*time.Second)
	if cfg.User == "" {
		cfg.User = "root"
	}
	if cfg.Role == "" {
		cfg.Role = "*"
	}
	if cfg.Name == "" {
		cfg.Name = "egret-" + cfg.Topology
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return &Engine{cfg: cfg, log: log.New(cfg.Log, "framework: ", log.LstdFlags|log.Lmsgprefix), reqs: make(chan func(*loop)), changed: make(chan struct{})}, nil
}

// masterURL turns host:port or a URL into the scheduler endpoint's URL.
func masterURL(m string) (string, error) {
	s := strings.TrimSpace(m)
	if s == "" {
		return "", errors.New("framework: empty Mesos master address")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("framework: Mesos master %q: want host:port or http(s)://host:port", m)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api/v1/scheduler") {
		u.Path += "/api/v1/scheduler"
	}
	return u.String(), nil
}

// Status returns the latest snapshot.
func (e *Engine) Status() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap
	s.Containers = append([]Container(nil), e.snap.Containers...)
	return s
}

// Wait blocks until cond holds for a snapshot or ctx ends.
func (e *Engine) Wait(ctx context.Context, cond func(Snapshot) bool) error {
	for {
		e.mu.Lock()
		ch := e.changed
		e.mu.Unlock()
		if cond(e.Status()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// do runs f on Run's loop and returns its error.
func (e *Engine) do(ctx context.Context, f func(*loop) error) error {
	errc := make(chan error, 1)
	select {
	case e.reqs <- func(l *loop) { errc <- f(l) }:
	case <-ctx.Done():
		return fmt.Errorf("framework not running: %w", ctx.Err())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetContainers declares the containers the topology needs: new ones wait
// for offers, missing ones are killed and forgotten.
func (e *Engine) SetContainers(ctx context.Context, needs map[int]Need) error {
	return e.do(ctx, func(l *loop) error { return l.setContainers(needs) })
}

// Restart kills and relaunches one container's task, or every one's when
// container is -1.
func (e *Engine) Restart(ctx context.Context, container int) error {
	return e.do(ctx, func(l *loop) error { return l.restart(container) })
}

// Kill kills every task and, once all are terminal, tears the framework
// down; it returns when that is done (Run then returns ErrKilled).
func (e *Engine) Kill(ctx context.Context) error {
	done := make(chan struct{})
	if err := e.do(ctx, func(l *loop) error { l.killAll(done); return nil }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill: tasks not all terminal yet: %w", ctx.Err())
	}
}

// Run subscribes to the master and runs the containers until ctx ends
// (the framework stays registered: a new scheduler fails over to it) or Kill
// tears it down (ErrKilled).
func (e *Engine) Run(ctx context.Context) error {
	rec, err := e.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("framework: load record: %w", err)
	}
	l := &loop{e: e, cfg: &e.cfg, log: e.log}
	if rec != nil {
		l.rec = *rec
	}
	l.rec.FormatVersion = recordVersion
	l.publish()
	return l.run(ctx)
}

// loop is Run's state, touched only by Run's goroutine.
type loop struct {
	e   *Engine
	cfg *EngineConfig
	log *log.Logger
	rec Record

	caller     calls.Caller
	transport  *http.Transport // closed when Run ends
	leader     *leader
	subscribed bool
	reconciled bool
	suppressed bool
	attempts   int    // failed subscription attempts in a row
	lastErr    string // the last failure to reach the master

	killing  bool
	killDone []chan struct{}
	torndown bool

	reconcileAt time.Time // next explicit (retry) or implicit reconciliation
	retry       time.Duration
}

// leader follows the leading master: every request goes to it, and a
// redirect (307, as a standby master answers) moves it.
type leader struct {
	mu      sync.Mutex
	masters []string
	cur     string
	next    int
}

func (ld *leader) get() string {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.cur
}

func (ld *leader) set(u string) {
	ld.mu.Lock()
	ld.cur = u
	ld.mu.Unlock()
}

// rotate moves to the next configured master (after a connection failure).
func (ld *leader) rotate() {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.next = (ld.next + 1) % len(ld.masters)
	ld.cur = ld.masters[ld.next]
}

func (ld *leader) wrap(do httpcli.DoFunc) httpcli.DoFunc {
	return func(req *http.Request) (*http.Response, error) {
		if cur, err := url.Parse(ld.get()); err == nil {
			req.URL.Scheme, req.URL.Host = cur.Scheme, cur.Host
			req.Host = cur.Host
		}
		res, err := do(req)
		if err == nil && res.StatusCode == http.StatusTemporaryRedirect {
			if loc, perr := url.Parse(res.Header.Get("Location")); perr == nil && loc.Host != "" {
				u := *req.URL
				u.Host = loc.Host
				if loc.Scheme != "" {
					u.Scheme = loc.Scheme
				}
				ld.set(u.String())
			}
		}
		return res, err
	}
}

func (l *loop) newCaller() {
	l.leader = &leader{masters: l.cfg.Masters, cur: l.cfg.Masters[0]}
	opts := []httpcli.Opt{
		httpcli.Endpoint(l.cfg.Masters[0]),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(l.cfg.HTTPTimeout), httpcli.Transport(func(t *http.Transport) { l.transport = t }))),
		httpcli.WrapDoer(l.leader.wrap),
	}
	if l.cfg.Principal != "" && l.cfg.Secret != "" {
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(l.cfg.Principal+":"+l.cfg.Secret))
		opts = append(opts, httpcli.DefaultHeader("Authorization", auth))
	}
	// No candidate endpoints: a master that cannot be reached is reported
	// at once (the loop rotates and backs off); real redirects still work.
	l.caller = httpsched.NewCaller(httpcli.New(opts...), httpsched.AllowReconnection(true),
		httpsched.EndpointCandidates(func() string { return "" }))
}

func (l *loop) frameworkInfo() *mesos.FrameworkInfo {
	ft := l.cfg.FailoverTimeout.Seconds()
	cp := true
	info := &mesos.FrameworkInfo{
		User: l.cfg.User, Name: l.cfg.Name, Role: &l.cfg.Role, Checkpoint: &cp, FailoverTimeout: &ft,
		Capabilities: []mesos.FrameworkInfo_Capability{},
	}
	if l.cfg.Principal != "" {
		info.Principal = &l.cfg.Principal
	}
	if l.cfg.Hostname != "" {
		info.Hostname = &l.cfg.Hostname
	}
	if l.cfg.WebUIURL != "" {
		info.WebUiURL = &l.cfg.WebUIURL
	}
	if l.rec.FrameworkID != "" {
		info.ID = &mesos.FrameworkID{Value: l.rec.FrameworkID}
	}
	return info
}

type streamEvent struct {
	gen int
	ev  *scheduler.Event
	err error // the stream ended
}

func (l *loop) run(ctx context.Context) error {
	l.newCaller()
	events := make(chan streamEvent)
	var wg sync.WaitGroup
	var cancelStream context.CancelFunc = func() {}
	defer func() {
		cancelStream()
		wg.Wait()
		l.transport.CloseIdleConnections()
	}()
	gen, live := 0, false // live: a subscription stream (gen) is being read
	var retryAt time.Time // next subscription attempt
	timer := time.NewTimer(0)
	defer timer.Stop()
	heartbeat := 30 * time.Second
	lastEvent := time.Now()
	for {
		now := time.Now()
		if !live && !now.Before(retryAt) {
			sctx, cancel := context.WithCancel(ctx)
			resp, err := l.caller.Call(sctx, calls.Subscribe(l.frameworkInfo()))
			if err != nil {
				cancel()
				if ctx.Err() != nil {
					return ctx.Err()
				}
				l.attempts++
				d := subscribeBackoff(l.attempts, l.cfg.SubscribeBackoffMax)
				l.lastErr = fmt.Sprintf("subscribe to %s: %v", l.leader.get(), err)
				l.log.Printf("%s (retry in %v)", l.lastErr, d)
				l.leader.rotate()
				retryAt = now.Add(d)
			} else {
				gen++
				live = true
				cancelStream = cancel
				lastEvent = now
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					defer resp.Close()
					for {
						var ev scheduler.Event
						err := resp.Decode(&ev)
						se := streamEvent{gen: g, ev: &ev, err: err}
						if err != nil {
							se.ev = nil
						}
						select {
						case events <- se:
						case <-sctx.Done():
							return
						}
						if err != nil {
							return
						}
					}
				}(gen)
			}
		}
		if err := l.step(ctx, now); err != nil {
			return err
		}
		if l.torndown {
			return ErrKilled
		}
		// When to wake up next.
		wake := l.wakeAt(now)
		if !live && (wake.IsZero() || retryAt.Before(wake)) {
			wake = retryAt
		}
		if live && l.subscribed {
			hb := lastEvent.Add(2*heartbeat + 5*time.Second)
			if wake.IsZero() || hb.Before(wake) {
				wake = hb
			}
		}
		d := time.Hour
		if !wake.IsZero() {
			d = time.Until(wake)
			if d < 0 {
				d = 0
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case f := <-l.e.reqs:
			f(l)
		case se := <-events:
			if se.gen != gen || !live {
				break
			}
			lastEvent = time.Now()
			if se.err != nil {
				l.log.Printf("subscription to %s ended: %v", l.leader.get(), se.err)
				cancelStream()
				live, l.subscribed = false, false
				l.attempts++
				retryAt = time.Now().Add(subscribeBackoff(l.attempts, l.cfg.SubscribeBackoffMax))
				l.publish()
				break
			}
			if se.ev.Type == scheduler.Event_SUBSCRIBED {
				if s := se.ev.GetSubscribed().GetHeartbeatIntervalSeconds(); s > 0 {
					heartbeat = time.Duration(s * float64(time.Second))
				}
			}
			if err := l.handle(ctx, se.ev); err != nil {
				return err
			}
		case <-timer.C:
			if live && l.subscribed && time.Since(lastEvent) > 2*heartbeat+5*time.Second {
				l.log.Printf("no heartbeat from %s for %v: re-subscribing", l.leader.get(), time.Since(lastEvent).Round(time.Second))
				cancelStream()
				wg.Wait()
				live, l.subscribed = false, false
				retryAt = time.Now()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func subscribeBackoff(attempt int, max time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// wakeAt is the next time the loop has work without an event: a container's
// backoff ending, or reconciliation.
func (l *loop) wakeAt(now time.Time) time.Time {
	var w time.Time
	if _, next := Ready(l.rec.Containers, now); !next.IsZero() {
		w = next
	}
	if l.subscribed && !l.reconcileAt.IsZero() && (w.IsZero() || l.reconcileAt.Before(w)) {
		w = l.reconcileAt
	}
	return w
}

// step does what time alone triggers: reconciliation and offer flow control.
func (l *loop) step(ctx context.Context, now time.Time) error {
	defer l.publish()
	if !l.subscribed {
		return nil
	}
	if !l.reconcileAt.IsZero() && !now.Before(l.reconcileAt) {
		l.reconcile(ctx, now)
	}
	l.flow(ctx, now)
	return nil
}

func (l *loop) call(ctx context.Context, c *scheduler.Call) error {
	if l.rec.FrameworkID != "" {
		c.FrameworkID = &mesos.FrameworkID{Value: l.rec.FrameworkID}
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.HTTPTimeout)
	defer cancel()
	err := calls.CallNoData(cctx, l.caller, c)
	if err != nil {
		l.log.Printf("%s call: %v", c.Type, err)
	}
	return err
}

// reconcile asks for the state of the tasks not yet confirmed since the
// subscription (explicit, retried with backoff), or of all tasks (implicit)
// once every one is known.
func (l *loop) reconcile(ctx context.Context, now time.Time) {
	un := Unconfirmed(l.rec.Containers)
	if len(un) == 0 {
		if !l.reconciled {
			l.log.Printf("explicit reconciliation complete")
		}
		l.reconciled = true
		_ = l.call(ctx, calls.Reconcile())
		l.reconcileAt = now.Add(l.cfg.ReconcileInterval)
		return
	}
	_ = l.call(ctx, calls.Reconcile(calls.ReconcileTasks(un)))
	l.reconcileAt = now.Add(l.retry)
	l.retry *= 2
	if l.retry > time.Minute {
		l.retry = time.Minute
	}
}

// flow suppresses offers when no container waits and revives them when one
// does.
func (l *loop) flow(ctx context.Context, now time.Time) {
	ready, _ := Ready(l.rec.Containers, now)
	want := len(ready) > 0 && !l.killing
	switch {
	case want && l.suppressed:
		if l.call(ctx, calls.Revive()) == nil {
			l.suppressed = false
		}
	case !want && !l.suppressed:
		if l.call(ctx, calls.Suppress()) == nil {
			l.suppressed = true
		}
	}
}

func (l *loop) handle(ctx context.Context, ev *scheduler.Event) error {
	defer l.publish()
	now := time.Now()
	switch ev.Type {
	case scheduler.Event_SUBSCRIBED:
		id := ev.GetSubscribed().GetFrameworkID().GetValue()
		l.subscribed, l.attempts, l.lastErr = true, 0, ""
		l.suppressed = false // a new subscription starts unsuppressed
		l.log.Printf("subscribed to %s as framework %s", l.leader.get(), id)
		changed := l.rec.FrameworkID != id
		l.rec.FrameworkID = id
		for i := range l.rec.Containers {
			c := &l.rec.Containers[i]
			if c.TaskID != "" && (c.Phase == PhaseActive || c.Phase == PhaseLaunched) {
				c.Phase = PhaseUnknown
			}
		}
		if changed {
			if err := l.save(ctx); err != nil {
				return err
			}
		}
		// Kills in flight are sent again: the old master may have lost them.
		for _, c := range l.rec.Containers {
			if c.Phase == PhaseKilling && c.TaskID != "" {
				_ = l.call(ctx, calls.Kill(c.TaskID, c.AgentID))
			}
		}
		l.reconciled = false
		l.retry = l.cfg.ReconcileRetry
		l.reconcileAt = now
		l.reconcile(ctx, now)
		l.checkKilled(ctx)
	case scheduler.Event_OFFERS:
		l.offers(ctx, ev.GetOffers().Offers, now)
	case scheduler.Event_RESCIND:
		// Nothing to undo: an offer is only used the moment it arrives.
	case scheduler.Event_UPDATE:
		return l.update(ctx, ev.GetUpdate().Status, now)
	case scheduler.Event_FAILURE:
		f := ev.GetFailure()
		l.log.Printf("failure: agent %s executor %s status %d", f.GetAgentID().GetValue(), f.GetExecutorID().GetValue(), f.GetStatus())
	case scheduler.Event_ERROR:
		msg := ev.GetError().GetMessage()
		l.log.Printf("master error: %s", msg)
		if strings.Contains(msg, "removed") || strings.Contains(msg, "torn down") {
			// The framework is gone for good (teardown or failover timeout):
			// subscribe afresh; every task is lost, so every container waits.
			l.rec.FrameworkID = ""
			for i := range l.rec.Containers {
				c := &l.rec.Containers[i]
				if c.TaskID != "" {
					c.TaskID, c.AgentID, c.Hostname, c.Ports, c.Running = "", "", "", nil, time.Time{}
					c.Phase, c.State, c.Message = PhaseWaiting, mesos.TASK_LOST.String(), msg
				}
			}
			if err := l.save(ctx); err != nil {
				return err
			}
		}
	case scheduler.Event_HEARTBEAT, scheduler.Event_MESSAGE:
	}
	return nil
}

func (l *loop) index(i int) int {
	for k, c := range l.rec.Containers {
		if c.Index == i {
			return k
		}
	}
	return -1
}

func (l *loop) update(ctx context.Context, st mesos.TaskStatus, now time.Time) error {
	taskID := st.TaskID.Value
	state := st.GetState()
	l.log.Printf("task %s: %s %s %s", taskID, state, st.GetReason(), st.GetMessage())
	_, ci, _, ok := ParseTaskID(taskID)
	k := -1
	if ok {
		k = l.index(ci)
	}
	dirty := false
	if k < 0 {
		if !Terminal(state) {
			_ = l.call(ctx, calls.Kill(taskID, st.GetAgentID().GetValue()))
		}
	} else {
		before := l.rec.Containers[k]
		c, v := OnStatus(before, taskID, state, st.GetMessage(), now, l.cfg.Policy)
		switch v {
		case KillIt:
			_ = l.call(ctx, calls.Kill(taskID, st.GetAgentID().GetValue()))
		case Forget:
			l.rec.Containers = append(l.rec.Containers[:k], l.rec.Containers[k+1:]...)
			dirty = true
		default:
			if c.TaskID == before.TaskID && c.AgentID == "" {
				c.AgentID = st.GetAgentID().GetValue()
			}
			if c.TaskID == taskID {
				if sb := sandboxOf(st.Data); sb != "" {
					c.Sandbox = sb
				}
			}
			l.rec.Containers[k] = c
			dirty = c.TaskID != before.TaskID || c.Phase != before.Phase
			if c.Phase == PhaseGaveUp && before.Phase != PhaseGaveUp {
				l.log.Printf("container %d failed %d times within %v: giving up until restarted", c.Index, len(c.Failures), l.cfg.Policy.Window)
			}
		}
	}
	if dirty {
		if err := l.save(ctx); err != nil {
			return err
		}
	}
	if len(st.UUID) > 0 {
		_ = l.call(ctx, calls.Acknowledge(st.GetAgentID().GetValue(), taskID, st.UUID))
	}
	if !l.reconciled && len(Unconfirmed(l.rec.Containers)) == 0 {
		l.reconcileAt = now // finish explicit reconciliation now
	}
	l.checkKilled(ctx)
	return nil
}

func (l *loop) offers(ctx context.Context, offers []mesos.Offer, now time.Time) {
	var ready []Waiting
	if !l.killing {
		ready, _ = Ready(l.rec.Containers, now)
	}
	placed, unused := Match(ready, offers, l.cfg.Role)
	byOffer := map[string][]mesos.TaskInfo{}
	var order []string
	for _, p := range placed {
		k := l.index(p.Container)
		c := l.rec.Containers[k]
		c.Attempt++
		c.TaskID = TaskID(l.cfg.Topology, c.Index, c.Attempt, now)
		c.AgentID, c.Hostname, c.Ports = p.Offer.AgentID.Value, p.Offer.Hostname, p.Ports
		c.Phase, c.State, c.Message, c.Running, c.NotBefore = PhaseLaunched, "", "", time.Time{}, time.Time{}
		data, err := l.cfg.TaskData(c)
		if err != nil {
			l.log.Printf("container %d: task data: %v", c.Index, err)
			c = l.rec.Containers[k]
			c.Phase, c.Message = PhaseGaveUp, err.Error()
			l.rec.Containers[k] = c
			continue
		}
		l.rec.Containers[k] = c
		ex := l.cfg.Executor
		ex.ExecutorID = mesos.ExecutorID{Value: ExecutorID(c.TaskID)}
		ex.FrameworkID = &mesos.FrameworkID{Value: l.rec.FrameworkID}
		if ex.Name == nil {
			name := fmt.Sprintf("egret executor for %s container %d", l.cfg.Topology, c.Index)
			ex.Name = &name
		}
		ti := mesos.TaskInfo{
			Name:      fmt.Sprintf("%s container %d", l.cfg.Topology, c.Index),
			TaskID:    mesos.TaskID{Value: c.TaskID},
			AgentID:   p.Offer.AgentID,
			Resources: p.Resources,
			Executor:  &ex,
			Data:      data,
		}
		id := p.Offer.ID.Value
		if _, ok := byOffer[id]; !ok {
			order = append(order, id)
		}
		byOffer[id] = append(byOffer[id], ti)
		l.log.Printf("launching container %d as %s on %s (ports %v)", c.Index, c.TaskID, c.Hostname, c.Ports)
	}
	if len(placed) > 0 {
		// Saved before the launch: a scheduler that dies now finds the task
		// by reconciliation instead of launching a second one.
		if err := l.save(ctx); err != nil {
			l.log.Printf("save record: %v (declining the offers)", err)
			for _, id := range order {
				for _, ti := range byOffer[id] {
					if k := l.index(mustContainer(ti.TaskID.Value)); k >= 0 {
						l.rec.Containers[k].Phase, l.rec.Containers[k].TaskID = PhaseWaiting, ""
					}
				}
				unused = append(unused, mesos.Offer{ID: mesos.OfferID{Value: id}})
			}
			order = nil
		}
	}
	for _, id := range order {
		c := calls.Accept(calls.OfferOperations{calls.OpLaunch(byOffer[id]...)}.WithOffers(mesos.OfferID{Value: id})).
			With(calls.RefuseSeconds(l.cfg.Refuse))
		if err := l.call(ctx, c); err != nil {
			// The master will report the tasks lost (or reconciliation will).
			continue
		}
	}
	if len(unused) > 0 {
		refuse := l.cfg.Idle
		if still, _ := Ready(l.rec.Containers, now); len(still) > 0 && !l.killing {
			refuse = l.cfg.Refuse
		}
		ids := make([]mesos.OfferID, 0, len(unused))
		for _, o := range unused {
			ids = append(ids, o.ID)
		}
		_ = l.call(ctx, calls.Decline(ids...).With(calls.RefuseSeconds(refuse)))
	}
}

func mustContainer(taskID string) int {
	_, c, _, _ := ParseTaskID(taskID)
	return c
}

func (l *loop) save(ctx context.Context) error {
	sort.Slice(l.rec.Containers, func(i, j int) bool { return l.rec.Containers[i].Index < l.rec.Containers[j].Index })
	if err := l.cfg.Store.Save(ctx, l.rec); err != nil {
		return fmt.Errorf("framework: save record: %w", err)
	}
	return nil
}

func (l *loop) publish() {
	s := Snapshot{FrameworkID: l.rec.FrameworkID, Subscribed: l.subscribed, Reconciled: l.reconciled,
		Suppressed: l.suppressed, Killing: l.killing, Containers: append([]Container(nil), l.rec.Containers...)}
	if l.leader != nil {
		s.Master = l.leader.get()
	}
	s.LastError = l.lastErr
	l.e.mu.Lock()
	l.e.snap = s
	close(l.e.changed)
	l.e.changed = make(chan struct{})
	l.e.mu.Unlock()
}

func (l *loop) setContainers(needs map[int]Need) error {
	if l.killing {
		return errors.New("the topology is being killed")
	}
	var out []Container
	var kills []Container
	for _, c := range l.rec.Containers {
		n, keep := needs[c.Index]
		if keep {
			if c.Phase == PhaseKilling && c.Then == ThenRemove {
				c.Then = ThenRelaunch // wanted again after all
			}
			c.Need = n
			out = append(out, c)
			continue
		}
		c2, kill := Remove(c)
		if kill {
			out = append(out, c2)
			kills = append(kills, c2)
		}
	}
	for i, n := range needs {
		if l.index(i) < 0 {
			out = append(out, Container{Index: i, Need: n, Phase: PhaseWaiting})
		}
	}
	l.rec.Containers = out
	if err := l.save(context.Background()); err != nil {
		return err
	}
	for _, c := range kills {
		if l.subscribed {
			_ = l.call(context.Background(), calls.Kill(c.TaskID, c.AgentID))
		}
	}
	l.publish()
	return nil
}

func (l *loop) restart(container int) error {
	if l.killing {
		return errors.New("the topology is being killed")
	}
	found := false
	for k, c := range l.rec.Containers {
		if container != -1 && c.Index != container {
			continue
		}
		found = true
		c2, kill := Restart(c)
		l.rec.Containers[k] = c2
		if kill && l.subscribed {
			_ = l.call(context.Background(), calls.Kill(c2.TaskID, c2.AgentID))
		}
	}
	if !found {
		return fmt.Errorf("no container %d (the topology has %d)", container, len(l.rec.Containers))
	}
	if err := l.save(context.Background()); err != nil {
		return err
	}
	l.publish()
	return nil
}

func (l *loop) killAll(done chan struct{}) {
	l.killDone = append(l.killDone, done)
	l.killing = true
	var out []Container
	for _, c := range l.rec.Containers {
		c2, kill := Remove(c)
		if !kill {
			continue
		}
		out = append(out, c2)
		if l.subscribed {
			_ = l.call(context.Background(), calls.Kill(c2.TaskID, c2.AgentID))
		}
	}
	l.rec.Containers = out
	if err := l.save(context.Background()); err != nil {
		l.log.Printf("%v", err)
	}
	l.checkKilled(context.Background())
	l.publish()
}

// checkKilled tears the framework down once a kill has left no task.
func (l *loop) checkKilled(ctx context.Context) {
	if !l.killing || len(l.rec.Containers) > 0 || !l.subscribed || l.torndown {
		return
	}
	if err := l.call(ctx, &scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		return // retried on the next event or subscription
	}
	l.log.Printf("framework %s torn down", l.rec.FrameworkID)
	l.rec.FrameworkID = ""
	l.torndown = true
	for _, d := range l.killDone {
		close(d)
	}
	l.killDone = nil
}

// sandboxOf reads the sandbox an executor may report in its status data
// (a JSON object with "sandbox"); anything else is not ours to read.
func sandboxOf(data []byte) string {
	if len(data) == 0 || data[0] != '{' {
		return ""
	}
	var v struct {
		Sandbox string `json:"sandbox"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.Sandbox
}
