package mesosmaster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/goleak"
)

// sub is a raw JSON subscription, read frame by frame as a scheduler would.
type sub struct {
	t      *testing.T
	res    *http.Response
	r      *bufio.Reader
	stream string
	fw     string
	events chan *scheduler.Event
}

func post(t *testing.T, url, streamID string, c *scheduler.Call) *http.Response {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if streamID != "" {
		req.Header.Set("Mesos-Stream-Id", streamID)
	}
	c2 := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func subscribe(t *testing.T, url string, info *mesos.FrameworkInfo) *sub {
	t.Helper()
	res := post(t, url, "", calls.Subscribe(info))
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("SUBSCRIBE: %s %s", res.Status, b)
	}
	s := &sub{t: t, res: res, r: bufio.NewReader(res.Body), stream: res.Header.Get("Mesos-Stream-Id"), events: make(chan *scheduler.Event, 100)}
	if s.stream == "" {
		t.Fatal("SUBSCRIBE answered without Mesos-Stream-Id")
	}
	go func() {
		defer close(s.events)
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(s.r, b); err != nil {
				return
			}
			var e scheduler.Event
			if err := json.Unmarshal(b, &e); err != nil {
				return
			}
			s.events <- &e
		}
	}()
	e := s.next(scheduler.Event_SUBSCRIBED, scheduler.Event_ERROR)
	if e.Type == scheduler.Event_SUBSCRIBED {
		s.fw = e.Subscribed.FrameworkID.Value
	}
	return s
}

func (s *sub) next(types ...scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream ended waiting for %v", types)
			}
			for _, ty := range types {
				if e.Type == ty {
					return e
				}
			}
		case <-timeout:
			s.t.Fatalf("no %v event", types)
		}
	}
}

func (s *sub) call(c *scheduler.Call) int {
	c.FrameworkID = &mesos.FrameworkID{Value: s.fw}
	res := post(s.t, "http://"+s.res.Request.URL.Host, s.stream, c)
	res.Body.Close()
	return res.StatusCode
}

func (s *sub) close() { s.res.Body.Close() }

func info(id string, failover float64) *mesos.FrameworkInfo {
	role := "heron"
	fi := &mesos.FrameworkInfo{User: "u", Name: "n", Role: &role, FailoverTimeout: &failover}
	if id != "" {
		fi.ID = &mesos.FrameworkID{Value: id}
	}
	return fi
}

func TestSchedulerAPI(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := Start(Options{Standby: true, Agents: []Agent{{ID: "a1", Hostname: "h1", Resources: Resources(2, 1024, 1000, 100, 110)}}})
	defer m.Close()

	res := post(t, m.URLs()[1], "", calls.Subscribe(info("", 0)))
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect ||
		!strings.Contains(res.Header.Get("Location"), strings.TrimPrefix(m.URL(), "http:")) {
		t.Errorf("standby answered %s Location %q, want 307 to the leader", res.Status, res.Header.Get("Location"))
	}

	s := subscribe(t, m.URL(), info("", 0))
	o := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if o.AgentID.Value != "a1" || len(o.Resources) != 4 {
		t.Errorf("offer = %+v, want a1's four resources", o)
	}
	res = post(t, m.URL(), "", calls.Revive().With(calls.Framework(s.fw)))
	res.Body.Close()
	if code := res.StatusCode; code != http.StatusBadRequest {
		t.Errorf("call without Mesos-Stream-Id: %d, want 400", code)
	}
	// DECLINE with a long filter: no offer until REVIVE.
	if code := s.call(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour))); code != http.StatusAccepted {
		t.Fatalf("DECLINE: %d", code)
	}
	if code := s.call(calls.Revive()); code != http.StatusAccepted {
		t.Fatalf("REVIVE: %d", code)
	}
	o = s.next(scheduler.Event_OFFERS).Offers.Offers[0]

	// LAUNCH a task using more than offered: TASK_ERROR.
	ex := &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "e1"}, Command: &mesos.CommandInfo{}}
	tooBig := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t0"}, AgentID: o.AgentID, Executor: ex, Resources: Resources(4, 10, 10)}
	s.call(calls.Accept(calls.OfferOperations{calls.OpLaunch(tooBig)}.WithOffers(o.ID)).With(calls.RefuseSeconds(0)))
	u := s.next(scheduler.Event_UPDATE).Update.Status
	if u.TaskID.Value != "t0" || u.GetState() != mesos.TASK_ERROR {
		t.Errorf("too big a task: %s %s, want TASK_ERROR", u.TaskID.Value, u.GetState())
	}
	s.call(calls.Acknowledge(u.GetAgentID().GetValue(), u.TaskID.Value, u.UUID))
	o = s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	ok := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t1"}, AgentID: o.AgentID, Executor: ex, Resources: Resources(1, 10, 10, 100, 101)}
	s.call(calls.Accept(calls.OfferOperations{calls.OpLaunch(ok)}.WithOffers(o.ID)))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		u := s.next(scheduler.Event_UPDATE).Update.Status
		if u.GetState() != want || len(u.UUID) == 0 {
			t.Errorf("update %s (uuid %x), want %s with a uuid", u.GetState(), u.UUID, want)
		}
		s.call(calls.Acknowledge(u.GetAgentID().GetValue(), u.TaskID.Value, u.UUID))
	}
	// Explicit reconciliation of a known and an unknown task.
	s.call(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t1": "a1", "nope": "a1"})))
	got := map[string]mesos.TaskState{}
	for len(got) < 2 {
		u := s.next(scheduler.Event_UPDATE).Update.Status
		if len(u.UUID) != 0 || u.GetReason() != mesos.REASON_RECONCILIATION {
			t.Errorf("reconciliation update %+v: want no uuid and REASON_RECONCILIATION", u)
		}
		got[u.TaskID.Value] = u.GetState()
	}
	if got["t1"] != mesos.TASK_RUNNING || got["nope"] != mesos.TASK_LOST {
		t.Errorf("reconciled %v, want t1 running and nope lost", got)
	}
	// The scheduler goes away with failover timeout 0: the framework is
	// removed, its task killed, and it cannot come back.
	s.close()
	if err := m.Wait(context.Background(), func(m *Master) bool { return m.Removed(s.fw) }); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(context.Background(), func(m *Master) bool { return taskState(m, "t1") == mesos.TASK_KILLED }); err != nil {
		t.Fatal(err)
	}
	s2 := subscribe(t, m.URL(), info(s.fw, 0))
	defer s2.close()
	if s2.fw != "" {
		t.Errorf("a removed framework subscribed again")
	}
}

func taskState(m *Master, id string) mesos.TaskState {
	for _, t := range m.Tasks() {
		if t.ID == id {
			return t.State
		}
	}
	return -1
}
