// Package mesosmaster is a Mesos master's scheduler API (/api/v1/scheduler)
// for tests, with simulated agents. It behaves as Mesos does where a
// framework can tell: a SUBSCRIBE answered by a RecordIO event stream with a
// Mesos-Stream-Id header, other calls answered 202 and refused without the
// stream id, offers of the agents' free resources (port ranges included),
// ACCEPT with LAUNCH checked against the offer, DECLINE and ACCEPT filters,
// SUPPRESS and REVIVE, KILL, explicit and implicit RECONCILE, status updates
// that are re-sent until acknowledged, TEARDOWN, a failover timeout after a
// scheduler disconnects, and a standby master that redirects to the leader.
//
// What a launched task does is up to a Launcher: Simulated reports tasks
// running at once; a launcher backed by test/mesosagent runs the real
// `egret executor`.
package mesosmaster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Agent is a simulated agent.
type Agent struct {
	ID, Hostname string
	Resources    []mesos.Resource // total
}

// Resources builds an agent's resources: cpus, mem and disk (MB) and port
// ranges given as begin, end pairs.
func Resources(cpus, memMB, diskMB float64, portRanges ...uint64) []mesos.Resource {
	sc := func(n string, v float64) mesos.Resource {
		return mesos.Resource{Name: n, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	}
	rs := []mesos.Resource{sc("cpus", cpus), sc("mem", memMB), sc("disk", diskMB)}
	if len(portRanges) > 0 {
		p := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{}}
		for i := 0; i+1 < len(portRanges); i += 2 {
			p.Ranges.Range = append(p.Ranges.Range, mesos.Value_Range{Begin: portRanges[i], End: portRanges[i+1]})
		}
		rs = append(rs, p)
	}
	return rs
}

// Launcher runs launched tasks. Statuses go back through update, from any
// goroutine; the master fills in agent, framework and executor ids, uuid,
// source and timestamp when they are missing.
type Launcher interface {
	Launch(agent Agent, fw mesos.FrameworkInfo, task mesos.TaskInfo, update func(mesos.TaskStatus)) error
	Kill(agentID, taskID string)
	// Close ends every task still running.
	Close()
}

// Options configure a master.
type Options struct {
	Agents   []Agent
	Launcher Launcher // default: Simulated
	// Heartbeat is the interval of HEARTBEAT events (default 15s).
	Heartbeat time.Duration
	// Standby starts a second master that redirects to the leader; Failover
	// swaps them.
	Standby bool
}

// Task is the master's view of one task.
type Task struct {
	ID, AgentID, FrameworkID string
	ExecutorID               string
	Name                     string
	State                    mesos.TaskState
	Resources                []mesos.Resource
	Data                     []byte
	Message                  string
}

// Framework is the master's view of one framework.
type Framework struct {
	ID         string
	Info       mesos.FrameworkInfo
	Connected  bool
	Suppressed bool
	Subscribes int
}

type framework struct {
	Framework
	stream     *stream
	offers     map[string]*mesos.Offer
	filters    map[string]time.Time // agent → refuse until
	unacked    map[string]*mesos.TaskStatus
	failover   *time.Timer
	lastStatus map[string]mesos.TaskStatus // task → latest status
}

type stream struct {
	id     string
	events chan *scheduler.Event
	done   chan struct{}
	once   sync.Once
}

func (s *stream) close() { s.once.Do(func() { close(s.done) }) }

type task struct {
	Task
	agent *agent
}

type agent struct {
	Agent
	free mesos.Resources
}

// Master is a test master; make one with Start.
type Master struct {
	opts     Options
	launcher Launcher
	servers  [2]*httptest.Server
	leader   int

	mu         sync.Mutex
	agents     []*agent
	frameworks map[string]*framework
	removed    map[string]bool
	tasks      map[string]*task // by framework id + "/" + task id
	calls      map[scheduler.Call_Type]int
	seq        int
	changed    chan struct{}
	closed     bool
	timers     []*time.Timer
}

// Start starts a master (and a standby when asked) on loopback; Close ends it.
func Start(opts Options) *Master {
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 15 * time.Second
	}
	m := &Master{opts: opts, launcher: opts.Launcher, frameworks: map[string]*framework{}, removed: map[string]bool{},
		tasks: map[string]*task{}, calls: map[scheduler.Call_Type]int{}, changed: make(chan struct{})}
	if m.launcher == nil {
		m.launcher = NewSimulated()
	}
	for _, a := range opts.Agents {
		m.agents = append(m.agents, &agent{Agent: a, free: mesos.Resources(a.Resources).Clone()})
	}
	m.servers[0] = httptest.NewServer(m.handler(0))
	if opts.Standby {
		m.servers[1] = httptest.NewServer(m.handler(1))
	}
	return m
}

// URL is the leading master's base URL (http://host:port).
func (m *Master) URL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.servers[m.leader].URL
}

// URLs lists the masters, leader first.
func (m *Master) URLs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var us []string
	for i := range m.servers {
		j := (m.leader + i) % len(m.servers)
		if m.servers[j] != nil {
			us = append(us, m.servers[j].URL)
		}
	}
	return us
}

// Close stops the masters and the launcher's tasks.
func (m *Master) Close() {
	m.mu.Lock()
	m.closed = true
	for _, f := range m.frameworks {
		if f.stream != nil {
			f.stream.close()
		}
		if f.failover != nil {
			f.failover.Stop()
		}
	}
	for _, t := range m.timers {
		t.Stop()
	}
	m.mu.Unlock()
	for _, s := range m.servers {
		if s != nil {
			s.CloseClientConnections()
			s.Close()
		}
	}
	m.launcher.Close()
}

// Failover makes the standby the leader: every subscription ends, outstanding
// offers are rescinded, and the old leader redirects to the new one. Tasks
// and frameworks survive, as the agents re-register with the new master.
func (m *Master) Failover() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.servers[1] == nil {
		return errors.New("mesosmaster: no standby master (Options.Standby)")
	}
	m.leader = 1 - m.leader
	for _, f := range m.frameworks {
		m.disconnectLocked(f)
	}
	m.notifyLocked()
	return nil
}

// Tasks lists every task the master knows, terminal ones included.
func (m *Master) Tasks() []Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tasksLocked()
}

func (m *Master) tasksLocked() []Task {
	var ts []Task
	for _, t := range m.tasks {
		ts = append(ts, t.Task)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	return ts
}

// Frameworks lists the frameworks the master knows (not torn down).
func (m *Master) Frameworks() []Framework {
	m.mu.Lock()
	defer m.mu.Unlock()
	var fs []Framework
	for _, f := range m.frameworks {
		fs = append(fs, f.Framework)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	return fs
}

// Removed reports whether a framework was torn down or timed out.
func (m *Master) Removed(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed[id]
}

// Calls counts the calls received, by type.
func (m *Master) Calls(t scheduler.Call_Type) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[t]
}

// Wait blocks until cond holds (checked after every change of the master's
// state) or ctx ends.
func (m *Master) Wait(ctx context.Context, cond func(m *Master) bool) error {
	for {
		m.mu.Lock()
		ch := m.changed
		m.mu.Unlock()
		if cond(m) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mesosmaster: condition not met: %w", ctx.Err())
		}
	}
}

// Update injects a status update, as if the task's executor or agent sent
// it (e.g. TASK_FAILED to make a task fail).
func (m *Master) Update(taskID string, state mesos.TaskState, message string) error {
	m.mu.Lock()
	var found *task
	for _, t := range m.tasks {
		if t.ID == taskID && !terminal(t.State) {
			found = t
		}
	}
	m.mu.Unlock()
	if found == nil {
		return fmt.Errorf("mesosmaster: no live task %q", taskID)
	}
	m.status(found.FrameworkID, mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Message: &message,
		Source: mesos.SOURCE_AGENT.Enum()})
	return nil
}

func (m *Master) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR, mesos.TASK_LOST,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

func (m *Master) nextID(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, m.seq)
}

// ---- HTTP ----

const (
	mediaProtobuf = "application/x-protobuf"
	mediaJSON     = "application/json"
)

func (m *Master) handler(idx int) http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "Expecting 'POST'", http.StatusMethodNotAllowed)
			return
		}
		m.mu.Lock()
		leader, closed := m.leader, m.closed
		loc := m.servers[m.leader].Listener.Addr().String()
		m.mu.Unlock()
		if closed {
			http.Error(w, "master shutting down", http.StatusServiceUnavailable)
			return
		}
		if leader != idx {
			w.Header().Set("Location", "//"+loc+"/api/v1/scheduler")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		m.serveCall(w, r)
	}
	mux.HandleFunc("/api/v1/scheduler", h)
	mux.HandleFunc("/master/api/v1/scheduler", h)
	return mux
}

func (m *Master) serveCall(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var call scheduler.Call
	switch ct {
	case mediaProtobuf:
		err = call.Unmarshal(body)
	case mediaJSON:
		err = json.Unmarshal(body, &call)
	case "":
		http.Error(w, "Expecting 'Content-Type' to be present", http.StatusBadRequest)
		return
	default:
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.calls[call.Type]++
	m.notifyLocked()
	m.mu.Unlock()
	if call.Type == scheduler.Call_SUBSCRIBE {
		m.subscribe(w, r, &call)
		return
	}
	code, msg := m.call(r.Header.Get("Mesos-Stream-Id"), &call)
	if code != http.StatusAccepted {
		http.Error(w, msg, code)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func accepts(r *http.Request) string {
	a := r.Header.Get("Accept")
	if a == "" || strings.Contains(a, mediaJSON) || strings.Contains(a, "*/*") {
		if strings.Contains(a, mediaProtobuf) && !strings.Contains(a, mediaJSON) {
			return mediaProtobuf
		}
		return mediaJSON
	}
	if strings.Contains(a, mediaProtobuf) {
		return mediaProtobuf
	}
	return ""
}

func (m *Master) subscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call) {
	if r.Header.Get("Mesos-Stream-Id") != "" {
		http.Error(w, "Subscribe calls should not include the 'Mesos-Stream-Id' header", http.StatusBadRequest)
		return
	}
	media := accepts(r)
	if media == "" {
		http.Error(w, "Expecting 'Accept' to allow application/json or application/x-protobuf", http.StatusNotAcceptable)
		return
	}
	sub := call.GetSubscribe()
	if sub == nil {
		http.Error(w, "Expecting 'subscribe' to be present", http.StatusBadRequest)
		return
	}
	if sub.FrameworkInfo == nil {
		http.Error(w, "Expecting 'framework_info' to be present", http.StatusBadRequest)
		return
	}
	info := *sub.FrameworkInfo
	if info.ID != nil && call.FrameworkID != nil && info.ID.Value != call.FrameworkID.Value {
		http.Error(w, "'framework_id' differs from 'subscribe.framework_info.id'", http.StatusBadRequest)
		return
	}
	if info.User == "" || info.Name == "" {
		http.Error(w, "FrameworkInfo needs 'user' and 'name'", http.StatusBadRequest)
		return
	}
	st := &stream{events: make(chan *scheduler.Event, 4096), done: make(chan struct{})}
	m.mu.Lock()
	st.id = m.nextID("stream")
	var f *framework
	var refused string
	if info.ID != nil && info.ID.Value != "" {
		if m.removed[info.ID.Value] {
			refused = "Framework has been removed"
		} else if f = m.frameworks[info.ID.Value]; f == nil {
			// A master that failed over learns frameworks as they re-subscribe.
			f = m.newFrameworkLocked(info.ID.Value)
		}
	} else {
		f = m.newFrameworkLocked(m.nextID("framework"))
	}
	if f != nil {
		if f.stream != nil {
			f.stream.close() // Mesos hangs up on the old subscription
		}
		if f.failover != nil {
			f.failover.Stop()
			f.failover = nil
		}
		id := f.ID
		f.Info = info
		f.Info.ID = &mesos.FrameworkID{Value: id}
		f.stream, f.Connected, f.Suppressed = st, true, false
		f.Subscribes++
		hb := m.opts.Heartbeat.Seconds()
		st.events <- &scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
			FrameworkID: &mesos.FrameworkID{Value: id}, HeartbeatIntervalSeconds: &hb}}
		for _, u := range f.unacked {
			st.events <- &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: *u}}
		}
		m.allocateLocked()
	}
	m.notifyLocked()
	m.mu.Unlock()

	w.Header().Set("Content-Type", media)
	w.Header().Set("Mesos-Stream-Id", st.id)
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	write := func(e *scheduler.Event) error {
		var b []byte
		var err error
		if media == mediaProtobuf {
			b, err = e.Marshal()
		} else {
			b, err = json.Marshal(e)
		}
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%d\n", len(b)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	if refused != "" {
		_ = write(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: refused}})
		return
	}
	hb := time.NewTicker(m.opts.Heartbeat)
	defer hb.Stop()
	defer m.streamEnded(f, st)
	for {
		select {
		case e := <-st.events:
			if write(e) != nil {
				return
			}
		case <-hb.C:
			if write(&scheduler.Event{Type: scheduler.Event_HEARTBEAT}) != nil {
				return
			}
		case <-st.done:
			// Drain what was queued before the end (a TEARDOWN's last words).
			for {
				select {
				case e := <-st.events:
					if write(e) != nil {
						return
					}
				default:
					return
				}
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (m *Master) newFrameworkLocked(id string) *framework {
	f := &framework{Framework: Framework{ID: id}, offers: map[string]*mesos.Offer{}, filters: map[string]time.Time{},
		unacked: map[string]*mesos.TaskStatus{}, lastStatus: map[string]mesos.TaskStatus{}}
	m.frameworks[id] = f
	return f
}

// streamEnded starts the failover timeout of a framework whose scheduler went
// away (unless it already re-subscribed, or was removed).
func (m *Master) streamEnded(f *framework, st *stream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.stream != st {
		return
	}
	m.disconnectLocked(f)
	m.notifyLocked()
}

func (m *Master) disconnectLocked(f *framework) {
	if f.stream != nil {
		f.stream.close()
	}
	f.stream, f.Connected = nil, false
	m.rescindLocked(f)
	if m.frameworks[f.ID] != f || f.failover != nil || m.closed {
		return
	}
	timeout := time.Duration(f.Info.GetFailoverTimeout() * float64(time.Second))
	id := f.ID
	f.failover = time.AfterFunc(timeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if g := m.frameworks[id]; g == f && !f.Connected {
			m.removeLocked(f)
			m.notifyLocked()
		}
	})
}

func (m *Master) rescindLocked(f *framework) {
	for id, o := range f.offers {
		m.agentLocked(o.AgentID.Value).free.Add(o.Resources...)
		delete(f.offers, id)
	}
}

// removeLocked tears a framework down: its tasks are killed and it can never
// subscribe again.
func (m *Master) removeLocked(f *framework) {
	if f.stream != nil {
		f.stream.close()
	}
	m.rescindLocked(f)
	delete(m.frameworks, f.ID)
	m.removed[f.ID] = true
	for _, t := range m.tasks {
		if t.FrameworkID == f.ID && !terminal(t.State) {
			agentID, taskID := t.AgentID, t.ID
			go m.launcher.Kill(agentID, taskID)
		}
	}
}

func (m *Master) agentLocked(id string) *agent {
	for _, a := range m.agents {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// call handles every call but SUBSCRIBE, returning the HTTP status.
func (m *Master) call(streamID string, call *scheduler.Call) (int, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.notifyLocked()
	if call.FrameworkID == nil {
		return http.StatusBadRequest, "Expecting 'framework_id' to be present"
	}
	f := m.frameworks[call.FrameworkID.Value]
	if f == nil || f.stream == nil {
		return http.StatusForbidden, "Framework cannot be found or is not subscribed"
	}
	if streamID != f.stream.id {
		return http.StatusBadRequest, fmt.Sprintf("The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s", streamID, f.ID)
	}
	now := time.Now()
	switch call.Type {
	case scheduler.Call_TEARDOWN:
		m.removeLocked(f)
	case scheduler.Call_ACCEPT:
		a := call.GetAccept()
		if a == nil {
			return http.StatusBadRequest, "Expecting 'accept' to be present"
		}
		m.acceptLocked(f, a, now)
	case scheduler.Call_DECLINE:
		d := call.GetDecline()
		if d == nil {
			return http.StatusBadRequest, "Expecting 'decline' to be present"
		}
		for _, id := range d.OfferIDs {
			if o := f.offers[id.Value]; o != nil {
				delete(f.offers, id.Value)
				m.agentLocked(o.AgentID.Value).free.Add(o.Resources...)
				m.filterLocked(f, o.AgentID.Value, d.Filters, now)
			}
		}
	case scheduler.Call_REVIVE:
		f.Suppressed = false
		f.filters = map[string]time.Time{}
		m.allocateLocked()
	case scheduler.Call_SUPPRESS:
		f.Suppressed = true
	case scheduler.Call_KILL:
		k := call.GetKill()
		if k == nil {
			return http.StatusBadRequest, "Expecting 'kill' to be present"
		}
		t := m.tasks[f.ID+"/"+k.TaskID.Value]
		if t == nil || terminal(t.State) {
			msg := "Attempted to kill an unknown task"
			m.sendLocked(f, mesos.TaskStatus{TaskID: k.TaskID, State: mesos.TASK_LOST.Enum(), Message: &msg,
				Source: mesos.SOURCE_MASTER.Enum(), Reason: mesos.REASON_RECONCILIATION.Enum(), AgentID: k.AgentID}, false)
			break
		}
		agentID, taskID := t.AgentID, t.ID
		go m.launcher.Kill(agentID, taskID)
	case scheduler.Call_ACKNOWLEDGE:
		ack := call.GetAcknowledge()
		if ack == nil {
			return http.StatusBadRequest, "Expecting 'acknowledge' to be present"
		}
		delete(f.unacked, string(ack.UUID))
	case scheduler.Call_RECONCILE:
		rc := call.GetReconcile()
		if rc == nil {
			return http.StatusBadRequest, "Expecting 'reconcile' to be present"
		}
		m.reconcileLocked(f, rc)
	case scheduler.Call_SHUTDOWN, scheduler.Call_MESSAGE, scheduler.Call_REQUEST, scheduler.Call_ACCEPT_INVERSE_OFFERS,
		scheduler.Call_DECLINE_INVERSE_OFFERS, scheduler.Call_UPDATE_FRAMEWORK, scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS,
		scheduler.Call_RECONCILE_OPERATIONS:
		// accepted and ignored: egret does not use them
	default:
		return http.StatusBadRequest, "Unknown call type"
	}
	return http.StatusAccepted, ""
}

func (m *Master) filterLocked(f *framework, agentID string, fl *mesos.Filters, now time.Time) {
	refuse := 5 * time.Second // Mesos' default
	if fl != nil && fl.RefuseSeconds != nil {
		refuse = time.Duration(*fl.RefuseSeconds * float64(time.Second))
	}
	if refuse <= 0 {
		m.allocateLocked()
		return
	}
	f.filters[agentID] = now.Add(refuse)
	m.timers = append(m.timers, time.AfterFunc(refuse+time.Millisecond, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed {
			m.allocateLocked()
			m.notifyLocked()
		}
	}))
}

func (m *Master) acceptLocked(f *framework, a *scheduler.Call_Accept, now time.Time) {
	// Gather the offers; all must be outstanding and on one agent.
	var offered mesos.Resources
	var ag *agent
	valid := len(a.OfferIDs) > 0
	for _, id := range a.OfferIDs {
		o := f.offers[id.Value]
		if o == nil {
			valid = false
			continue
		}
		delete(f.offers, id.Value)
		if ag != nil && ag.ID != o.AgentID.Value {
			valid = false
		}
		ag = m.agentLocked(o.AgentID.Value)
		offered.Add(o.Resources...)
	}
	fail := func(ti mesos.TaskInfo, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
		m.sendLocked(f, mesos.TaskStatus{TaskID: ti.TaskID, AgentID: &ti.AgentID, State: state.Enum(), Reason: reason.Enum(),
			Message: &msg, Source: mesos.SOURCE_MASTER.Enum()}, true)
	}
	for _, op := range a.Operations {
		if op.Type != mesos.Offer_Operation_LAUNCH || op.Launch == nil {
			continue
		}
		for _, ti := range op.Launch.TaskInfos {
			if !valid || ag == nil {
				fail(ti, mesos.TASK_LOST, mesos.REASON_INVALID_OFFERS, "Task launched with invalid offers")
				continue
			}
			if msg := m.validateLocked(f, ag, ti, offered); msg != "" {
				fail(ti, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, msg)
				continue
			}
			for _, r := range ti.Resources {
				offered.Subtract1(r)
			}
			if ti.Executor != nil {
				for _, r := range ti.Executor.Resources {
					offered.Subtract1(r)
				}
			}
			t := &task{Task: Task{ID: ti.TaskID.Value, AgentID: ag.ID, FrameworkID: f.ID, Name: ti.Name, State: mesos.TASK_STAGING,
				Resources: append(append([]mesos.Resource(nil), ti.Resources...), ti.GetExecutor().GetResources()...), Data: ti.Data}, agent: ag}
			if ti.Executor != nil {
				t.ExecutorID = ti.Executor.ExecutorID.Value
			}
			m.tasks[f.ID+"/"+t.ID] = t
			info, agentCopy, fwID := f.Info, ag.Agent, f.ID
			go func() {
				if err := m.launcher.Launch(agentCopy, info, ti, func(s mesos.TaskStatus) { m.status(fwID, s) }); err != nil {
					msg := err.Error()
					m.status(fwID, mesos.TaskStatus{TaskID: ti.TaskID, State: mesos.TASK_FAILED.Enum(), Message: &msg,
						Reason: mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum(), Source: mesos.SOURCE_AGENT.Enum()})
				}
			}()
		}
	}
	if ag != nil {
		ag.free.Add(offered...)
		m.filterLocked(f, ag.ID, a.Filters, now)
	}
}

func (m *Master) validateLocked(f *framework, ag *agent, ti mesos.TaskInfo, offered mesos.Resources) string {
	if ti.TaskID.Value == "" {
		return "Task ID must not be empty"
	}
	if t := m.tasks[f.ID+"/"+ti.TaskID.Value]; t != nil && !terminal(t.State) {
		return "Task has duplicate ID: " + ti.TaskID.Value
	}
	if ti.AgentID.Value != ag.ID {
		return fmt.Sprintf("Task uses agent %q but the offer is for %q", ti.AgentID.Value, ag.ID)
	}
	if (ti.Executor == nil) == (ti.Command == nil) {
		return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
	}
	if ti.Executor != nil && ti.Executor.ExecutorID.Value == "" {
		return "ExecutorInfo needs an executor id"
	}
	if len(ti.Resources) == 0 {
		return "Task uses no resources"
	}
	all := append(append([]mesos.Resource(nil), ti.Resources...), ti.GetExecutor().GetResources()...)
	left := offered.Clone()
	for _, r := range all {
		if err := resources.Validate(r); err != nil {
			return "Invalid resources: " + err.Error()
		}
		if !resources.Contains(left, r) {
			return fmt.Sprintf("Task uses more resources %v than available %v", mesos.Resources(all), offered)
		}
		left.Subtract1(r)
	}
	return ""
}

func (m *Master) reconcileLocked(f *framework, rc *scheduler.Call_Reconcile) {
	reason := mesos.REASON_RECONCILIATION.Enum()
	if len(rc.Tasks) == 0 {
		for _, t := range m.tasks {
			if t.FrameworkID == f.ID && !terminal(t.State) {
				m.sendLocked(f, m.copyLocked(f, t, reason), false)
			}
		}
		return
	}
	for _, rt := range rc.Tasks {
		t := m.tasks[f.ID+"/"+rt.TaskID.Value]
		if t == nil {
			msg := "Reconciliation: Task is unknown"
			m.sendLocked(f, mesos.TaskStatus{TaskID: rt.TaskID, AgentID: rt.AgentID, State: mesos.TASK_LOST.Enum(), Reason: reason,
				Message: &msg, Source: mesos.SOURCE_MASTER.Enum()}, false)
			continue
		}
		m.sendLocked(f, m.copyLocked(f, t, reason), false)
	}
}

// copyLocked is the latest status of a task as reconciliation reports it:
// no uuid (nothing to acknowledge), no data or message.
func (m *Master) copyLocked(f *framework, t *task, reason *mesos.TaskStatus_Reason) mesos.TaskStatus {
	s := mesos.TaskStatus{TaskID: mesos.TaskID{Value: t.ID}, State: t.State.Enum(), AgentID: &mesos.AgentID{Value: t.AgentID},
		Reason: reason, Source: mesos.SOURCE_MASTER.Enum()}
	if t.ExecutorID != "" {
		s.ExecutorID = &mesos.ExecutorID{Value: t.ExecutorID}
	}
	return s
}

// status takes an update from a task and forwards it to its framework,
// keeping it until acknowledged.
func (m *Master) status(fwID string, s mesos.TaskStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.notifyLocked()
	t := m.tasks[fwID+"/"+s.TaskID.Value]
	if t == nil || terminal(t.State) {
		return // one terminal update per task
	}
	t.State = s.GetState()
	t.Message = s.GetMessage()
	if s.AgentID == nil {
		s.AgentID = &mesos.AgentID{Value: t.AgentID}
	}
	if s.ExecutorID == nil && t.ExecutorID != "" {
		s.ExecutorID = &mesos.ExecutorID{Value: t.ExecutorID}
	}
	if terminal(t.State) {
		t.agent.free.Add(t.Resources...)
		m.allocateLocked()
	}
	if f := m.frameworks[fwID]; f != nil {
		m.sendLocked(f, s, true)
	}
}

// sendLocked sends a status to a framework; reliable ones carry a uuid and
// are re-sent on every subscription until acknowledged.
func (m *Master) sendLocked(f *framework, s mesos.TaskStatus, reliable bool) {
	if s.Timestamp == nil {
		ts := float64(time.Now().UnixNano()) / 1e9
		s.Timestamp = &ts
	}
	if reliable {
		if len(s.UUID) == 0 {
			m.seq++
			s.UUID = []byte(fmt.Sprintf("%016d", m.seq))
		}
		c := s
		f.unacked[string(s.UUID)] = &c
	} else {
		s.UUID = nil
	}
	if f.stream == nil {
		return
	}
	select {
	case f.stream.events <- &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: s}}:
	default:
		m.disconnectLocked(f) // a scheduler that does not read loses its subscription
	}
}

// allocateLocked offers every agent's free resources to each subscribed,
// unsuppressed framework that has not filtered the agent.
func (m *Master) allocateLocked() {
	now := time.Now()
	ids := make([]string, 0, len(m.frameworks))
	for id := range m.frameworks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := m.frameworks[id]
		if f.stream == nil || f.Suppressed {
			continue
		}
		var offers []mesos.Offer
		for _, ag := range m.agents {
			if until, ok := f.filters[ag.ID]; ok && now.Before(until) {
				continue
			}
			free := usable(ag.free, f.Info.GetRole())
			if len(free) == 0 || !hasScalar(free) {
				continue
			}
			for _, r := range free {
				ag.free.Subtract1(r)
			}
			o := mesos.Offer{ID: mesos.OfferID{Value: m.nextID("offer")}, FrameworkID: mesos.FrameworkID{Value: f.ID},
				AgentID: mesos.AgentID{Value: ag.ID}, Hostname: ag.Hostname, Resources: free}
			f.offers[o.ID.Value] = &o
			offers = append(offers, o)
		}
		if len(offers) > 0 {
			select {
			case f.stream.events <- &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: offers}}:
			default:
				m.disconnectLocked(f)
			}
		}
	}
}

func usable(free mesos.Resources, role string) []mesos.Resource {
	var out []mesos.Resource
	for _, r := range free {
		if r.IsEmpty() {
			continue
		}
		rr := r.ReservationRole()
		if rr == "*" || rr == "" || rr == role {
			c := r
			if r.Scalar != nil {
				s := *r.Scalar
				c.Scalar = &s
			}
			if r.Ranges != nil {
				c.Ranges = &mesos.Value_Ranges{Range: append([]mesos.Value_Range(nil), r.Ranges.Range...)}
			}
			out = append(out, c)
		}
	}
	return out
}

func hasScalar(rs []mesos.Resource) bool {
	for _, r := range rs {
		if r.Scalar != nil && r.Scalar.Value > 0.001 {
			return true
		}
	}
	return false
}

// AddAgent adds an agent; its resources are offered at once.
func (m *Master) AddAgent(a Agent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agents = append(m.agents, &agent{Agent: a, free: mesos.Resources(a.Resources).Clone()})
	m.allocateLocked()
	m.notifyLocked()
}
