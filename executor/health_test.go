package executor_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/test/mesosagent"
)

// healthUpdates returns the healthy values of task's health updates, in order.
func healthUpdates(us []mesosagent.Update, task string) []bool {
	var hs []bool
	for _, u := range us {
		st := u.Status
		if st.TaskID.Value == task && !u.Duplicate && st.Healthy != nil && st.GetState() == mesos.TASK_RUNNING {
			if st.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
				continue
			}
			hs = append(hs, *st.Healthy)
		}
	}
	return hs
}

func fastCheck(hc *mesos.HealthCheck, failures uint32) *mesos.HealthCheck {
	hc.DelaySeconds = ptr(0.0)
	hc.IntervalSeconds = ptr(0.1)
	hc.TimeoutSeconds = ptr(2.0)
	hc.GracePeriodSeconds = ptr(0.0)
	hc.ConsecutiveFailures = ptr(failures)
	return hc
}

// tcpToggle is a TCP port that accepts connections only while on.
type tcpToggle struct {
	mu   sync.Mutex
	port int
	ln   net.Listener
}

func (tt *tcpToggle) set(t *testing.T, on bool) {
	t.Helper()
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if on && tt.ln == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(tt.port))
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		tt.ln = ln
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	if !on && tt.ln != nil {
		tt.ln.Close()
		tt.ln = nil
	}
}

// Each kind of health check goes unhealthy and healthy, reported through healthy and
// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED: healthy on the first success and the first after
// failures, unhealthy on every counted failure.
func TestHealthChecks(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})

	// COMMAND: healthy while a file exists in the sandbox.
	flag := filepath.Join(e.Sandbox(), "healthy")
	cmdCheck := fastCheck(&mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command: &mesos.CommandInfo{Value: ptr("test -f " + flag)}}, 1000)

	// HTTP: a server answering 503 or 200.
	var httpOK atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpOK.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	httpPort, _ := strconv.Atoi(port)
	httpCheck := fastCheck(&mesos.HealthCheck{Type: mesos.HealthCheck_HTTP,
		HTTP: &mesos.HealthCheck_HTTPCheckInfo{Port: uint32(httpPort), Path: ptr("/health")}}, 1000)

	// TCP: a port that is open or closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp := &tcpToggle{port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	t.Cleanup(func() { tcp.set(t, false) })
	tcpCheck := fastCheck(&mesos.HealthCheck{Type: mesos.HealthCheck_TCP,
		TCP: &mesos.HealthCheck_TCPCheckInfo{Port: uint32(tcp.port)}}, 1000)

	checks := map[string]*mesos.HealthCheck{"cmd": cmdCheck, "http": httpCheck, "tcp": tcpCheck}
	for id, hc := range checks {
		task := shellTask(id, "exec sleep 1000")
		task.HealthCheck = hc
		e.LaunchTask(task)
	}
	turn := map[string]func(bool){
		"cmd": func(on bool) {
			if on {
				os.WriteFile(flag, nil, 0o644)
			} else {
				os.Remove(flag)
			}
		},
		"http": func(on bool) { httpOK.Store(on) },
		"tcp":  func(on bool) { tcp.set(t, on) },
	}
	waitHealth := func(id string, want []bool) {
		t.Helper()
		err := e.Wait(v.ctx, func(us []mesosagent.Update, _ []mesosagent.Subscription) bool {
			got := healthUpdates(us, id)
			return len(got) >= len(want) && equalBools(got[len(got)-len(want):], want)
		})
		if err != nil {
			t.Fatalf("%s: health updates %v, want them to end with %v", id, healthUpdates(e.Updates(), id), want)
		}
	}
	for id := range checks {
		v.waitState(e, id, mesos.TASK_RUNNING)
	}
	// Unhealthy first: every counted failure is reported.
	for id := range checks {
		waitHealth(id, []bool{false, false})
	}
	for id := range checks {
		turn[id](true)
	}
	for id := range checks {
		waitHealth(id, []bool{true})
	}
	// Healthy is reported once, not on every success.
	for id := range checks {
		turn[id](false)
	}
	for id := range checks {
		waitHealth(id, []bool{false})
		hs := healthUpdates(e.Updates(), id)
		trues := 0
		for _, h := range hs {
			if h {
				trues++
			}
		}
		if trues != 1 {
			t.Errorf("%s: %d healthy updates in %v, want exactly 1 (only the first success after failures)", id, trues, hs)
		}
	}
	for id := range checks {
		e.Kill(id, time.Second)
	}
	for id := range checks {
		v.waitState(e, id, mesos.TASK_KILLED)
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
}

// After consecutive_failures failed checks the task is killed; its terminal update says
// healthy=false.
func TestHealthCheckKills(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	task := shellTask("sick", "exec sleep 1000")
	task.HealthCheck = fastCheck(&mesos.HealthCheck{Type: mesos.HealthCheck_COMMAND,
		Command: &mesos.CommandInfo{Value: ptr("exit 1")}}, 3)
	e.LaunchTask(task)
	st := v.waitState(e, "sick", mesos.TASK_KILLED)
	if st.Healthy == nil || *st.Healthy {
		t.Errorf("KILLED healthy = %v, want false", st.Healthy)
	}
	if got := healthUpdates(e.Updates(), "sick"); !equalBools(got, []bool{false, false, false}) {
		t.Errorf("health updates = %v, want three unhealthy", got)
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
