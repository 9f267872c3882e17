package mesosagent

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	exe "egret/executor"
)

func post(t *testing.T, a *Agent, ct, accept string, body []byte, auth string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+a.Endpoint()+exe.APIPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func encode(t *testing.T, wire string, c *executor.Call) []byte {
	t.Helper()
	b, err := exe.Encode(exe.Codec(wire), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(typ executor.Call_Type) *executor.Call {
	return &executor.Call{Type: typ, FrameworkID: mesos.FrameworkID{Value: "fw"}, ExecutorID: mesos.ExecutorID{Value: "ex"}}
}

func update(uuid []byte, src mesos.TaskStatus_Source, state mesos.TaskState) *executor.Call {
	c := call(executor.Call_UPDATE)
	c.Update = &executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"},
		State: state.Enum(), Source: src.Enum(), UUID: uuid}}
	return c
}

// The agent answers as Mesos' does: status codes, media types and call validation.
func TestAgentStatusCodes(t *testing.T) {
	a, err := New(Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.register(newExecutor(a, ExecutorSpec{FrameworkID: "fw", ExecutorID: "ex", Token: "tok"})); err != nil {
		t.Fatal(err)
	}
	const pb, js = "application/x-protobuf", "application/json"
	v4 := []byte{0, 1, 2, 3, 4, 5, 0x46, 7, 0x88, 9, 10, 11, 12, 13, 14, 15}
	sub := call(executor.Call_SUBSCRIBE)
	sub.Subscribe = &executor.Call_Subscribe{}
	noSub := call(executor.Call_SUBSCRIBE)
	unknownEx := call(executor.Call_SUBSCRIBE)
	unknownEx.Subscribe = &executor.Call_Subscribe{}
	unknownEx.ExecutorID.Value = "nobody"
	tests := []struct {
		name       string
		ct, accept string
		body       []byte
		auth       string
		want       int
	}{
		{"no content type", "", pb, encode(t, exe.WireProtobuf, sub), "Bearer tok", 400},
		{"other content type", "text/plain", pb, []byte("x"), "Bearer tok", 415},
		{"garbage body", pb, pb, []byte{0xff, 0xff, 0xff}, "Bearer tok", 400},
		{"subscribe without subscribe", pb, pb, encode(t, exe.WireProtobuf, noSub), "Bearer tok", 400},
		{"unknown call type", pb, pb, encode(t, exe.WireProtobuf, call(executor.Call_UNKNOWN)), "Bearer tok", 501},
		{"unknown executor", pb, pb, encode(t, exe.WireProtobuf, unknownEx), "Bearer tok", 400},
		{"no token", pb, pb, encode(t, exe.WireProtobuf, sub), "", 401},
		{"wrong token", pb, pb, encode(t, exe.WireProtobuf, sub), "Bearer other", 403},
		{"recordio accept", pb, "application/recordio", encode(t, exe.WireProtobuf, sub), "Bearer tok", 406},
		{"update before subscribe", pb, pb, encode(t, exe.WireProtobuf, update(v4, mesos.SOURCE_EXECUTOR, mesos.TASK_RUNNING)), "Bearer tok", 403},
		{"textual uuid", js, js, encode(t, exe.WireJSON, update([]byte("0d3c2a3c-6f4e-4b4e-9a3c-2a3c6f4e4b4e"), mesos.SOURCE_EXECUTOR, mesos.TASK_RUNNING)), "Bearer tok", 400},
		{"wrong source", pb, pb, encode(t, exe.WireProtobuf, update(v4, mesos.SOURCE_AGENT, mesos.TASK_RUNNING)), "Bearer tok", 400},
		{"staging", pb, pb, encode(t, exe.WireProtobuf, update(v4, mesos.SOURCE_EXECUTOR, mesos.TASK_STAGING)), "Bearer tok", 400},
		{"heartbeat", pb, pb, encode(t, exe.WireProtobuf, call(executor.Call_HEARTBEAT)), "", 202},
	}
	for _, tt := range tests {
		resp := post(t, a, tt.ct, tt.accept, tt.body, tt.auth)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}

	a.SetRecovering(true)
	resp := post(t, a, pb, pb, encode(t, exe.WireProtobuf, sub), "Bearer tok")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("subscribe while recovering: %d, want 503", resp.StatusCode)
	}
	a.SetRecovering(false)

	// No Accept header: the stream is JSON, and SUBSCRIBED comes first.
	resp = post(t, a, pb, "", encode(t, exe.WireProtobuf, sub), "Bearer tok")
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != js {
		t.Fatalf("subscribe: %d %q, want 200 with a JSON stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dec := exe.NewEventDecoder(bufio.NewReader(resp.Body), exe.Codec(exe.WireJSON), 0)
	ev, err := dec.Next()
	if err != nil || ev.Type != executor.Event_SUBSCRIBED {
		t.Fatalf("first event = %v, %v; want SUBSCRIBED", ev, err)
	}
	// An accepted update is answered 202, then ACKNOWLEDGED on the stream with its UUID.
	ex := a.executors[key("fw", "ex")]
	ex.LaunchTask(mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t"}})
	if ev, err := dec.Next(); err != nil || ev.Type != executor.Event_LAUNCH {
		t.Fatalf("second event = %v, %v; want LAUNCH", ev, err)
	}
	r := post(t, a, pb, pb, encode(t, exe.WireProtobuf, update(v4, mesos.SOURCE_EXECUTOR, mesos.TASK_RUNNING)), "Bearer tok")
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != 202 {
		t.Fatalf("update: %d, want 202", r.StatusCode)
	}
	ev, err = dec.Next()
	if err != nil || ev.Type != executor.Event_ACKNOWLEDGED || !bytes.Equal(ev.Acknowledged.UUID, v4) {
		t.Fatalf("after the update: %v, %v; want ACKNOWLEDGED of its uuid", ev, err)
	}
	if st, _ := ex.TaskState("t"); st != mesos.TASK_RUNNING {
		t.Errorf("agent's task state = %s, want TASK_RUNNING", st)
	}
	if s := Summary(ex.Updates()); !strings.Contains(s, "t:RUNNING") {
		t.Errorf("updates = %s, want t:RUNNING", s)
	}
}
