// Package mesosagent is a Mesos agent's executor endpoint (/api/v1/executor) for tests. It
// behaves as Mesos' agent does, not as an executor would wish: the same status codes, the
// same validation of calls, ACKNOWLEDGED after each accepted update, the executor's
// environment set as the agent sets it, and real `egret executor` processes. A test can drop
// an executor's stream, make the agent refuse calls, restart it (recovering: 503) and bring it
// back. It speaks protobuf and JSON.
package mesosagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	exe "egret/executor"
)

// Options configure an Agent.
type Options struct {
	// AgentID is the agent's id (default "egret-test-agent").
	AgentID string
	// EgretBin is the egret binary executors are started from.
	EgretBin string
	// Logf receives the agent's log lines (default: none).
	Logf func(format string, args ...any)
	// DropAcks makes the agent accept updates (202) but never acknowledge them.
	DropAcks bool
	// ReregistrationTimeout: after recovery, executors that have not re-subscribed within it
	// are destroyed and their tasks LOST (Mesos' --executor_reregistration_timeout, default 2s).
	ReregistrationTimeout time.Duration
}

// Agent serves /api/v1/executor on a loopback port that stays the same across Restart.
type Agent struct {
	opts Options

	mu         sync.Mutex
	addr       string
	srv        *http.Server
	ln         net.Listener
	running    bool
	recovering bool
	refuse     int // answer every call with this status (0: serve normally)
	executors  map[string]*Executor
	codes      map[int]int // status codes answered, by code
	changed    chan struct{}
	serveDone  chan struct{}
}

// New starts an agent on 127.0.0.1 at a free port.
func New(opts Options) (*Agent, error) {
	if opts.AgentID == "" {
		opts.AgentID = "egret-test-agent"
	}
	if opts.ReregistrationTimeout <= 0 {
		opts.ReregistrationTimeout = 2 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	a := &Agent{opts: opts, executors: map[string]*Executor{}, codes: map[int]int{}, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mesosagent: listen: %w", err)
	}
	a.addr = ln.Addr().String()
	a.serve(ln)
	return a, nil
}

// Endpoint is the agent's host:port (MESOS_AGENT_ENDPOINT).
func (a *Agent) Endpoint() string { return a.addr }

// ID is the agent's id.
func (a *Agent) ID() string { return a.opts.AgentID }

func (a *Agent) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(a.handle)}
	done := make(chan struct{})
	a.mu.Lock()
	a.srv, a.ln, a.running, a.serveDone = srv, ln, true, done
	a.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// broadcast wakes every waiter; call with mu held.
func (a *Agent) broadcastLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// Codes returns how many times each status code was answered.
func (a *Agent) Codes() map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[int]int, len(a.codes))
	for k, v := range a.codes {
		m[k] = v
	}
	return m
}

// Refuse makes the agent answer every call with code (0 serves normally again).
func (a *Agent) Refuse(code int) {
	a.mu.Lock()
	a.refuse = code
	a.mu.Unlock()
}

// Stop takes the agent down as a crash would: streams and connections break, the port
// refuses connections. Its state (executors, tasks, updates) is kept, as Mesos checkpoints it.
func (a *Agent) Stop() {
	a.mu.Lock()
	srv, done := a.srv, a.serveDone
	a.running = false
	for _, e := range a.executors {
		e.dropLocked()
	}
	a.mu.Unlock()
	if srv != nil {
		_ = srv.Close() // closes the listener and every connection, streams included
		<-done
	}
}

// Start brings a stopped agent back on the same port. With recovering, it answers 503 until
// Recovered is called, as Mesos does while its containerizer recovers.
func (a *Agent) Start(recovering bool) error {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port can linger for a moment after Close
		if ln, err = net.Listen("tcp", a.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mesosagent: listen again on %s: %w", a.addr, err)
	}
	a.mu.Lock()
	a.recovering = recovering
	a.mu.Unlock()
	a.serve(ln)
	return nil
}

// SetRecovering makes SUBSCRIBE (and every other call) answer 503.
func (a *Agent) SetRecovering(on bool) {
	a.mu.Lock()
	a.recovering = on
	a.mu.Unlock()
}

// Recovered ends recovery; executors that do not re-subscribe within the re-registration
// timeout are destroyed and their tasks reported LOST.
func (a *Agent) Recovered() {
	a.mu.Lock()
	a.recovering = false
	pending := map[*Executor]int{} // executor → its subscriptions before recovery ended
	for _, e := range a.executors {
		if !e.subscribed && e.everSubscribed && !e.exited {
			pending[e] = len(e.subs)
		}
	}
	a.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	time.AfterFunc(a.opts.ReregistrationTimeout, func() {
		for e, n := range pending {
			a.mu.Lock()
			late := len(e.subs) == n && !e.exited
			a.mu.Unlock()
			if late {
				a.opts.Logf("executor %s did not re-subscribe in time; destroying it", e.id)
				e.destroy(mesos.TASK_LOST, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT, "executor did not re-register within the timeout")
			}
		}
	})
}

// Close kills every executor (process group, and every process carrying its container
// marker) and stops the server.
func (a *Agent) Close() {
	a.mu.Lock()
	es := make([]*Executor, 0, len(a.executors))
	for _, e := range a.executors {
		es = append(es, e)
	}
	a.mu.Unlock()
	for _, e := range es {
		e.kill()
	}
	a.Stop()
}

// Wait blocks until cond is true or ctx ends; cond is evaluated after every change the
// agent sees (a call answered, an update, a subscription, an exit).
func (a *Agent) Wait(ctx context.Context, cond func() bool) error {
	for {
		a.mu.Lock()
		ch := a.changed
		a.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wait blocks until cond (called with mu held) is true or ctx ends.
func (a *Agent) wait(ctx context.Context, cond func() bool) error {
	for {
		a.mu.Lock()
		if cond() {
			a.mu.Unlock()
			return nil
		}
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errStatus is an HTTP error answer.
type errStatus struct {
	code int
	msg  string
}

func (e *errStatus) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &errStatus{code: code, msg: fmt.Sprintf(format, args...)}
}

func (a *Agent) count(code int) {
	a.mu.Lock()
	a.codes[code]++
	a.broadcastLocked()
	a.mu.Unlock()
}

func (a *Agent) handle(w http.ResponseWriter, r *http.Request) {
	if err := a.serveCall(w, r); err != nil {
		var es *errStatus
		if !errors.As(err, &es) {
			es = &errStatus{code: http.StatusInternalServerError, msg: err.Error()}
		}
		a.opts.Logf("%s %s: %d %s", r.Method, r.URL.Path, es.code, es.msg)
		a.count(es.code)
		http.Error(w, es.msg, es.code)
	}
}

func mediaType(v string) string {
	mt, _, _ := strings.Cut(v, ";")
	return strings.TrimSpace(strings.ToLower(mt))
}

// acceptFor picks the stream's media type as the agent does: JSON if acceptable (including
// no Accept header and */*), else protobuf, else none.
func acceptFor(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return exe.WireJSON
	}
	json, pb := false, false
	for _, part := range strings.Split(accept, ",") {
		switch mediaType(part) {
		case "*/*", "application/*", "application/json":
			json = true
		case "application/x-protobuf":
			pb = true
		}
	}
	switch {
	case json:
		return exe.WireJSON
	case pb:
		return exe.WireProtobuf
	}
	return ""
}

func (a *Agent) serveCall(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != exe.APIPath && !strings.HasSuffix(r.URL.Path, ")"+exe.APIPath) {
		return fail(http.StatusNotFound, "no such endpoint %s", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "expecting a 'POST' request, received '%s'", r.Method)
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return fail(http.StatusBadRequest, "expecting 'Content-Type' to be present")
	}
	var wire string
	switch mediaType(ct) {
	case "application/json":
		wire = exe.WireJSON
	case "application/x-protobuf":
		wire = exe.WireProtobuf
	default:
		return fail(http.StatusUnsupportedMediaType, "expecting 'Content-Type' of application/json or application/x-protobuf")
	}
	a.mu.Lock()
	refuse, recovering := a.refuse, a.recovering
	a.mu.Unlock()
	if refuse != 0 {
		return fail(refuse, "refused by the test")
	}
	body := make([]byte, 0, 512)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	var call executor.Call
	if err := exe.Decode(exe.Codec(wire), body, &call); err != nil {
		return fail(http.StatusBadRequest, "failed to parse body into Call: %v", err)
	}
	if err := validateCall(&call); err != nil {
		if call.Type == executor.Call_UNKNOWN {
			return fail(http.StatusNotImplemented, "%v", err)
		}
		return fail(http.StatusBadRequest, "failed to validate Executor::Call: %v", err)
	}
	if call.Type == executor.Call_HEARTBEAT {
		a.count(http.StatusAccepted)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if recovering {
		return fail(http.StatusServiceUnavailable, "Agent has not finished recovery")
	}
	a.mu.Lock()
	e := a.executors[key(call.FrameworkID.Value, call.ExecutorID.Value)]
	a.mu.Unlock()
	if e == nil {
		return fail(http.StatusBadRequest, "Executor cannot be found")
	}
	if e.token != "" {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			return fail(http.StatusUnauthorized, "missing authorization")
		}
		if auth != "Bearer "+e.token {
			return fail(http.StatusForbidden, "the token's claims do not match the executor")
		}
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		stream := acceptFor(r.Header.Get("Accept"))
		if stream == "" {
			return fail(http.StatusNotAcceptable, "expecting 'Accept' to allow application/json or application/x-protobuf")
		}
		a.count(http.StatusOK)
		return e.subscribe(w, r, stream, call.Subscribe)
	case executor.Call_UPDATE:
		if err := e.statusUpdate(*call.Update); err != nil {
			return err
		}
	case executor.Call_MESSAGE:
		e.message(call.Message.Data)
	}
	a.count(http.StatusAccepted)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// validateCall checks a call as Mesos' validateExecutorCall does.
func validateCall(c *executor.Call) error {
	if c.Type == executor.Call_UNKNOWN {
		return errors.New("call type UNKNOWN is not implemented")
	}
	if c.ExecutorID.Value == "" {
		return errors.New("expecting 'executor_id' to be present")
	}
	if c.FrameworkID.Value == "" {
		return errors.New("expecting 'framework_id' to be present")
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return errors.New("expecting 'subscribe' to be present")
		}
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return errors.New("expecting 'message' to be present")
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return errors.New("expecting 'update' to be present")
		}
		st := &c.Update.Status
		if st.UUID == nil {
			return errors.New("expecting 'uuid' to be present")
		}
		if !exe.ValidUUID(st.UUID) {
			return fmt.Errorf("'uuid' is not a valid UUID (%d bytes)", len(st.UUID))
		}
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			return fmt.Errorf("received Call from executor with source %s, want SOURCE_EXECUTOR", st.GetSource())
		}
		if st.State == nil {
			return errors.New("expecting 'state' to be present")
		}
		if st.GetState() == mesos.TASK_STAGING {
			return errors.New("received TASK_STAGING from executor")
		}
		if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
			return fmt.Errorf("executor_id %q in the status does not match %q", st.ExecutorID.Value, c.ExecutorID.Value)
		}
		if cs := st.CheckStatus; cs != nil {
			if cs.Type == nil {
				return errors.New("expecting 'check_status.type' to be set")
			}
			switch *cs.Type {
			case mesos.CheckInfo_COMMAND:
				if cs.Command == nil {
					return errors.New("expecting 'check_status.command' to be set")
				}
			case mesos.CheckInfo_HTTP:
				if cs.HTTP == nil {
					return errors.New("expecting 'check_status.http' to be set")
				}
			case mesos.CheckInfo_TCP:
				if cs.TCP == nil {
					return errors.New("expecting 'check_status.tcp' to be set")
				}
			default:
				return errors.New("'check_status.type' is UNKNOWN")
			}
		}
	case executor.Call_HEARTBEAT:
	default:
		return fmt.Errorf("unknown call type %d", c.Type)
	}
	return nil
}
