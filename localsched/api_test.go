package localsched

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// recordingOps answers the scheduler API with what it was told to.
type recordingOps struct {
	calls []string
	fail  error
}

func (r *recordingOps) kill(_ context.Context, name string) error {
	r.calls = append(r.calls, "kill "+name)
	return r.fail
}
func (r *recordingOps) restart(_ context.Context, name string, c int) error {
	r.calls = append(r.calls, "restart "+name+" "+map[bool]string{true: "all", false: "one"}[c == -1])
	return r.fail
}
func (r *recordingOps) update(_ context.Context, cur, pro *model.PackingPlan) error {
	r.calls = append(r.calls, "update "+cur.GetId()+"->"+pro.GetId())
	return r.fail
}
func (r *recordingOps) status(context.Context) (*TopologyStatus, error) {
	return &TopologyStatus{FormatVersion: 1, Topology: "wc", State: "running"}, nil
}

func post(t *testing.T, url string, m proto.Message) *model.SchedulerResponse {
	t.Helper()
	var body []byte
	if m != nil {
		var err error
		if body, err = (proto.MarshalOptions{AllowPartial: true}).Marshal(m); err != nil {
			t.Fatal(err)
		}
	} else {
		body = []byte("\xff\xff not protobuf")
	}
	resp, err := http.Post(url, "application/x-www-form-urlencoded", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s, want 200", url, resp.Status)
	}
	b, _ := io.ReadAll(resp.Body)
	sr := &model.SchedulerResponse{}
	if err := proto.Unmarshal(b, sr); err != nil {
		t.Fatalf("POST %s: the answer is not a SchedulerResponse: %v", url, err)
	}
	return sr
}

func plan(id string) *model.PackingPlan {
	return &model.PackingPlan{Id: proto.String(id)}
}

func TestSchedulerAPI(t *testing.T) {
	ops := &recordingOps{}
	killed := 0
	srv := httptest.NewServer(apiHandler(ops, func() { killed++ }))
	defer srv.Close()

	ok := func(sr *model.SchedulerResponse) bool { return sr.GetStatus().GetStatus() == model.StatusCode_OK }
	if sr := post(t, srv.URL+"/restart", &model.RestartTopologyRequest{TopologyName: proto.String("wc"), ContainerIndex: proto.Int32(-1)}); !ok(sr) {
		t.Errorf("/restart = %v, want OK", sr)
	}
	if sr := post(t, srv.URL+"/update", &model.UpdateTopologyRequest{CurrentPackingPlan: plan("a"), ProposedPackingPlan: plan("b")}); !ok(sr) {
		t.Errorf("/update = %v, want OK", sr)
	}
	if sr := post(t, srv.URL+"/kill", &model.KillTopologyRequest{TopologyName: proto.String("wc")}); !ok(sr) || killed != 1 {
		t.Errorf("/kill = %v (afterKill ran %d times), want OK once", sr, killed)
	}
	want := []string{"restart wc all", "update a->b", "kill wc"}
	if strings.Join(ops.calls, ";") != strings.Join(want, ";") {
		t.Errorf("calls = %q, want %q", ops.calls, want)
	}

	// Failures are NOTOK with the reason, still HTTP 200, and a failed kill
	// does not end the daemon.
	ops.fail = errors.New("no container 7")
	sr := post(t, srv.URL+"/kill", &model.KillTopologyRequest{TopologyName: proto.String("wc")})
	if ok(sr) || !strings.Contains(sr.GetStatus().GetMessage(), "no container 7") || killed != 1 {
		t.Errorf("failed /kill = %v (afterKill %d), want NOTOK naming the reason", sr, killed)
	}
	if sr := post(t, srv.URL+"/restart", nil); ok(sr) || !strings.Contains(sr.GetStatus().GetMessage(), "bad RestartTopologyRequest body") {
		t.Errorf("/restart with garbage = %v, want NOTOK naming the body", sr)
	}
	if sr := post(t, srv.URL+"/update", &model.UpdateTopologyRequest{}); ok(sr) {
		t.Errorf("/update without plans = %v, want NOTOK", sr)
	}

	resp, err := http.Get(srv.URL + "/kill")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /kill = %s, want 405", resp.Status)
	}
	resp, err = http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st TopologyStatus
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Topology != "wc" || st.State != "running" {
		t.Errorf("GET /status = %+v", st)
	}
}

func TestPostSchedulerReadsResponses(t *testing.T) {
	ops := &recordingOps{}
	srv := httptest.NewServer(apiHandler(ops, nil))
	defer srv.Close()
	ep := strings.TrimPrefix(srv.URL, "http://")
	if err := postScheduler(context.Background(), ep, "restart", &model.RestartTopologyRequest{TopologyName: proto.String("wc"), ContainerIndex: proto.Int32(2)}); err != nil {
		t.Errorf("postScheduler(restart) = %v", err)
	}
	ops.fail = errors.New("boom")
	if err := postScheduler(context.Background(), ep, "restart", &model.RestartTopologyRequest{TopologyName: proto.String("wc"), ContainerIndex: proto.Int32(2)}); err == nil || err.Error() != "boom" {
		t.Errorf("postScheduler on NOTOK = %v, want boom", err)
	}
	if err := postScheduler(context.Background(), "127.0.0.1:1", "kill", &model.KillTopologyRequest{TopologyName: proto.String("wc")}); err == nil {
		t.Errorf("postScheduler to a closed port succeeded")
	}
}
