// Package executor is egret's Mesos executor on the v1 executor HTTP API.
//
// A Mesos agent starts it (`egret executor`) with its configuration in the environment. The
// executor subscribes to the agent, runs the tasks the agent launches (a Heron container
// described by TaskData, or a plain command), and reports every change of a task as a status
// update that is kept, and re-sent on every re-subscription, until the agent acknowledges it.
// It exits once every task is terminal and every update is acknowledged.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"egret/fetcher"
)

// Options are the parts of an executor that are not Mesos' to say.
type Options struct {
	// Logger receives the executor's own log lines (default: stderr, which the agent keeps
	// in the sandbox).
	Logger *log.Logger
	// MaxFrame bounds one record of the SUBSCRIBE stream (default DefaultMaxFrame).
	MaxFrame int
	// Fetcher fetches the URIs of Heron container tasks (default: egret's fetcher with the
	// host's cache, $EGRET_CACHE_DIR).
	Fetcher Fetcher
}

// Run is the executor: it returns nil after a normal end (every task terminal and
// acknowledged), or an error saying why it gave up. Cancelling ctx is a SHUTDOWN.
func Run(ctx context.Context, cfg Config) error {
	return RunWith(ctx, cfg, Options{})
}

// RunWith is Run with options. It removes MESOS_EXECUTOR_AUTHENTICATION_TOKEN from the
// process's environment: the token is the executor's alone, and tasks inherit that
// environment (MESOS-8140).
func RunWith(ctx context.Context, cfg Config, opts Options) error {
	_ = os.Unsetenv(EnvAuthToken)
	cfg = cfg.withDefaults()
	if opts.Fetcher == nil {
		dir, err := fetcher.DefaultCacheDir()
		if err != nil {
			dir = "" // no cache: every task downloads its own copy
		}
		opts.Fetcher = NewFetcher(dir)
	}
	if opts.Logger == nil {
		opts.Logger = log.New(os.Stderr, "egret executor: ", log.LstdFlags|log.Lmicroseconds)
	}
	e := &Executor{
		cfg:     cfg,
		opts:    opts,
		log:     opts.Logger,
		client:  newClient(cfg),
		tasks:   make(map[string]*task),
		wake:    make(chan struct{}, 1),
		sendReq: make(chan struct{}, 1),
	}
	return e.run(ctx)
}

// Executor holds one executor's state. Its fields under mu are shared by the connection
// loop, the sender and the tasks.
type Executor struct {
	cfg    Config
	opts   Options
	log    *log.Logger
	client *client

	tasksWG sync.WaitGroup // one per task goroutine
	wake    chan struct{}  // something changed that the main loop may act on
	sendReq chan struct{}  // there may be updates to send

	mu           sync.Mutex
	conn         int // id of the current subscription; 0 while disconnected
	subscribed   bool
	killingCap   bool // the framework has TASK_KILLING_STATE
	unacked      []*pending
	unackedTasks []mesos.TaskInfo
	tasks        map[string]*task
	order        []string // task ids in launch order
	launched     bool
	shuttingDown bool
	deliverable  bool // updates can still reach the agent (false after giving up the connection)
}

// pending is an update not yet acknowledged.
type pending struct {
	update executor.Call_Update
	uuid   string
	conn   int // subscription it was delivered on (in SUBSCRIBE or as UPDATE); 0 = not yet
}

func (e *Executor) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Executor) kickSender() {
	select {
	case e.sendReq <- struct{}{}:
	default:
	}
}

// connMsg is what a connection goroutine tells the main loop.
type connMsg struct {
	id  int
	up  bool            // the stream opened (200)
	ev  *executor.Event // an event arrived
	err error           // the attempt failed or the stream ended
}

func (e *Executor) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup // connection goroutines and the sender
	defer bg.Wait()
	defer cancel()

	e.deliverable = true
	bg.Add(1)
	go func() { defer bg.Done(); e.sendLoop(ctx) }()

	msgs := make(chan connMsg)
	var (
		connID      int
		connCancel  context.CancelFunc = func() {}
		connecting  bool
		everSub     bool
		recoverBy   time.Time // deadline of the current disconnection (checkpointing)
		retryTimer  = stoppedTimer()
		noTaskTimer = time.NewTimer(e.cfg.NoTaskTimeout)
		ackTimer    = stoppedTimer()
		ackArmed    bool
		killTimer   = stoppedTimer() // shutdown's hard deadline
		parentDone  = parent.Done()
	)
	defer noTaskTimer.Stop()
	defer retryTimer.Stop()
	defer ackTimer.Stop()
	defer killTimer.Stop()

	connect := func() {
		connID++
		id := connID
		var cctx context.Context
		cctx, connCancel = context.WithCancel(ctx)
		connecting = true
		call := e.subscribeCall(id)
		bg.Add(1)
		go func() { defer bg.Done(); e.runConn(cctx, id, call, msgs) }()
	}
	dropConn := func() {
		connCancel()
		connID++ // whatever the dropped connection still reports is stale
		connecting = false
		e.mu.Lock()
		e.conn = 0
		e.subscribed = false
		for _, p := range e.unacked {
			p.conn = 0
		}
		e.mu.Unlock()
	}
	shutdown := func(why string, deliverable bool) {
		e.mu.Lock()
		first := !e.shuttingDown
		e.shuttingDown = true
		if !deliverable {
			e.deliverable = false
		}
		e.mu.Unlock()
		if first {
			e.log.Printf("shutting down: %s", why)
			killTimer.Reset(e.cfg.ShutdownGrace)
			e.killAll(e.shutdownKillGrace())
		}
		e.notify()
	}
	giveUpConn := func(why string) {
		dropConn()
		retryTimer.Stop()
		shutdown(why, false)
	}

	connect()
	var result error
	for {
		select {
		case <-parentDone:
			parentDone = nil
			shutdown("asked to stop", true)

		case m := <-msgs:
			if m.id != connID {
				continue // a stale connection
			}
			switch {
			case m.up:
				// Wait for SUBSCRIBED before calling the executor subscribed.
			case m.ev != nil:
				if err := e.handle(m.id, m.ev, &everSub, shutdown); err != nil {
					// ERROR: drop the stream and subscribe again (after a short wait, so an
					// agent that answers every subscription with ERROR is not hammered).
					e.log.Printf("%v; subscribing again", err)
					dropConn()
					retryTimer.Reset(backoff(e.cfg.SubscribeRetry))
					continue
				}
				if m.ev.Type == executor.Event_SUBSCRIBED {
					recoverBy = time.Time{}
				}
			case m.err != nil:
				connecting = false
				wasSub := e.isSubscribed()
				dropConn()
				e.mu.Lock()
				stopping, deliverable := e.shuttingDown, e.deliverable
				e.mu.Unlock()
				if stopping && !deliverable {
					continue
				}
				if wasSub || everSub {
					e.log.Printf("disconnected from the agent: %v", m.err)
				} else {
					e.log.Printf("subscribe: %v", m.err)
				}
				if !retryable(m.err) && !everSub {
					giveUpConn(fmt.Sprintf("the agent refused SUBSCRIBE: %v", m.err))
					continue
				}
				if everSub && !e.cfg.Checkpoint {
					giveUpConn("disconnected and the framework does not checkpoint")
					continue
				}
				if everSub {
					if recoverBy.IsZero() {
						recoverBy = time.Now().Add(e.cfg.RecoveryTimeout)
					}
					if time.Now().After(recoverBy) {
						giveUpConn(fmt.Sprintf("no agent within the recovery timeout (%s)", e.cfg.RecoveryTimeout))
						continue
					}
					retryTimer.Reset(backoff(e.cfg.BackoffMax))
				} else {
					retryTimer.Reset(e.cfg.SubscribeRetry)
				}
			}

		case <-retryTimer.C:
			if !connecting {
				if !recoverBy.IsZero() && time.Now().After(recoverBy) {
					giveUpConn(fmt.Sprintf("no agent within the recovery timeout (%s)", e.cfg.RecoveryTimeout))
					continue
				}
				connect()
			}

		case <-noTaskTimer.C:
			e.mu.Lock()
			launched := e.launched
			e.mu.Unlock()
			if !launched {
				if !everSub {
					result = fmt.Errorf("could not subscribe to the agent at %s within %s", e.cfg.AgentEndpoint, e.cfg.NoTaskTimeout)
				} else {
					result = fmt.Errorf("no task arrived within %s of starting", e.cfg.NoTaskTimeout)
				}
				shutdown(result.Error(), true)
			}

		case <-ackTimer.C:
			n := e.unackedCount()
			if n > 0 && e.allTerminal() {
				result = fmt.Errorf("%d status updates still unacknowledged %s after the last terminal update", n, e.cfg.AckTimeout)
				e.log.Print(result)
				dropConn()
				e.waitTasks()
				return result
			}
			ackArmed = false

		case <-killTimer.C:
			// The shutdown grace is over: whatever still runs is killed now.
			e.killAll(0)
			e.waitTasks()
			dropConn()
			if result == nil {
				result = fmt.Errorf("shutdown grace period (%s) ended before every update was acknowledged", e.cfg.ShutdownGrace)
			}
			return result

		case <-e.wake:
		}

		// Exit conditions, checked after every change.
		e.mu.Lock()
		allDone := e.allTerminalLocked()
		n := len(e.unacked)
		launched, stopping, deliverable := e.launched, e.shuttingDown, e.deliverable
		e.mu.Unlock()
		if stopping && allDone && (n == 0 || !deliverable) {
			e.waitTasks()
			dropConn()
			if n > 0 && result == nil {
				result = fmt.Errorf("stopped with %d status updates that could not be delivered", n)
			}
			return result
		}
		if !stopping && launched && allDone {
			if n == 0 {
				e.waitTasks()
				dropConn()
				e.log.Print("every task is terminal and acknowledged; exiting")
				return nil
			}
			if !ackArmed {
				ackArmed = true
				ackTimer.Reset(e.cfg.AckTimeout)
			}
		}
	}
}

// waitTasks waits for the task goroutines, but not forever: a process stuck in the kernel
// must not keep the executor from exiting (the agent destroys the container after it).
func (e *Executor) waitTasks() {
	done := make(chan struct{})
	go func() { e.tasksWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		e.log.Print("some task processes did not end within 10s of their kill; exiting anyway")
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// backoff is the wait before the next re-subscription: uniform in (0, max], as Mesos' own
// library does, so every attempt comes within the agent's re-registration timeout.
func backoff(max time.Duration) time.Duration {
	if max <= 0 {
		max = 2 * time.Second
	}
	floor := max / 10
	return floor + rand.N(max-floor+1)
}

// runConn performs one subscription: SUBSCRIBE, then every event of the stream.
func (e *Executor) runConn(ctx context.Context, id int, call *executor.Call, msgs chan<- connMsg) {
	post := func(m connMsg) bool {
		m.id = id
		select {
		case msgs <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	body, err := e.client.subscribe(ctx, call)
	if err != nil {
		post(connMsg{err: err})
		return
	}
	defer body.Close()
	if !post(connMsg{up: true}) {
		return
	}
	dec := NewEventDecoder(body, e.client.codec, e.opts.MaxFrame)
	for {
		ev, err := dec.Next()
		var fe *FrameError
		switch {
		case errors.As(err, &fe):
			// One bad record in an intact stream: an ERROR, as Mesos' library does.
			ev = &executor.Event{Type: executor.Event_ERROR, Error: &executor.Event_Error{Message: fe.Error()}}
		case errors.Is(err, io.EOF):
			post(connMsg{err: errors.New("the agent closed the event stream")})
			return
		case err != nil:
			post(connMsg{err: fmt.Errorf("event stream: %w", err)})
			return
		}
		if !post(connMsg{ev: ev}) {
			return
		}
	}
}

// subscribeCall builds SUBSCRIBE with every unacknowledged task and update; the updates
// count as delivered on subscription id.
func (e *Executor) subscribeCall(id int) *executor.Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	sub := &executor.Call_Subscribe{
		UnacknowledgedTasks:   append([]mesos.TaskInfo(nil), e.unackedTasks...),
		UnacknowledgedUpdates: make([]executor.Call_Update, 0, len(e.unacked)),
	}
	for _, p := range e.unacked {
		sub.UnacknowledgedUpdates = append(sub.UnacknowledgedUpdates, p.update)
		p.conn = id
	}
	return &executor.Call{
		ExecutorID:  mesos.ExecutorID{Value: e.cfg.ExecutorID},
		FrameworkID: mesos.FrameworkID{Value: e.cfg.FrameworkID},
		Type:        executor.Call_SUBSCRIBE,
		Subscribe:   sub,
	}
}

// errAgentError is returned by handle for an ERROR event.
type agentError struct{ msg string }

func (e *agentError) Error() string { return "the agent sent ERROR: " + e.msg }

// handle acts on one event of subscription id.
func (e *Executor) handle(id int, ev *executor.Event, everSub *bool, shutdown func(string, bool)) error {
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		s := ev.GetSubscribed()
		e.mu.Lock()
		e.conn = id
		e.subscribed = true
		e.killingCap = false
		if s != nil {
			for _, c := range s.FrameworkInfo.GetCapabilities() {
				if c.Type == mesos.FrameworkInfo_Capability_TASK_KILLING_STATE {
					e.killingCap = true
				}
			}
		}
		e.mu.Unlock()
		*everSub = true
		e.log.Printf("subscribed to the agent at %s", e.cfg.AgentEndpoint)
		e.kickSender()
	case executor.Event_LAUNCH:
		if l := ev.GetLaunch(); l != nil {
			e.launch(l.Task)
		}
	case executor.Event_LAUNCH_GROUP:
		// Egret's group policy: the tasks of a group are independent; each has its own
		// updates, and one ending does not kill the others.
		if g := ev.GetLaunchGroup(); g != nil {
			for _, t := range g.TaskGroup.Tasks {
				e.launch(t)
			}
		}
	case executor.Event_KILL:
		if k := ev.GetKill(); k != nil {
			e.kill(k.TaskID.Value, k.KillPolicy)
		}
	case executor.Event_ACKNOWLEDGED:
		if a := ev.GetAcknowledged(); a != nil {
			e.acknowledge(a.TaskID.Value, a.UUID)
		}
	case executor.Event_MESSAGE:
		e.log.Printf("message from the framework (%d bytes), ignored", len(ev.GetMessage().GetData()))
	case executor.Event_SHUTDOWN:
		shutdown("the agent sent SHUTDOWN", true)
	case executor.Event_ERROR:
		return &agentError{msg: ev.GetError().GetMessage()}
	case executor.Event_HEARTBEAT:
	default:
		e.log.Printf("ignoring an event of unknown type %d", ev.Type)
	}
	return nil
}

func (e *Executor) isSubscribed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subscribed
}

func (e *Executor) unackedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.unacked)
}

func (e *Executor) allTerminal() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.allTerminalLocked()
}

func (e *Executor) allTerminalLocked() bool {
	for _, t := range e.tasks {
		if !t.terminal {
			return false
		}
	}
	return true
}

// acknowledge forgets an update the agent has accepted.
func (e *Executor) acknowledge(taskID string, uuid []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	found := false
	for i, p := range e.unacked {
		if p.uuid == string(uuid) {
			e.unacked = append(e.unacked[:i], e.unacked[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		e.log.Printf("ACKNOWLEDGED for an unknown update of task %s, ignored", taskID)
	}
	for i, ti := range e.unackedTasks {
		if ti.TaskID.Value == taskID {
			e.unackedTasks = append(e.unackedTasks[:i], e.unackedTasks[i+1:]...)
			break
		}
	}
	e.notify()
}

// sendLoop delivers queued updates in order on the call connection while subscribed. A
// failed UPDATE stays queued; it goes out again on the next subscription.
func (e *Executor) sendLoop(ctx context.Context) {
	retry := stoppedTimer()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.sendReq:
		case <-retry.C:
		}
		for {
			e.mu.Lock()
			conn := e.conn
			var next *pending
			if e.subscribed {
				for _, p := range e.unacked {
					if p.conn != conn {
						next = p
						break
					}
				}
			}
			var call *executor.Call
			if next != nil {
				call = &executor.Call{
					ExecutorID:  mesos.ExecutorID{Value: e.cfg.ExecutorID},
					FrameworkID: mesos.FrameworkID{Value: e.cfg.FrameworkID},
					Type:        executor.Call_UPDATE,
					Update:      &next.update,
				}
			}
			e.mu.Unlock()
			if next == nil {
				break
			}
			err := e.client.send(ctx, call)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				e.log.Printf("update %s of task %s: %v (kept; sent again later)",
					next.update.Status.GetState(), next.update.Status.TaskID.Value, err)
				retry.Reset(time.Second)
				break
			}
			e.mu.Lock()
			if e.conn == conn {
				next.conn = conn
			}
			e.mu.Unlock()
		}
	}
}
