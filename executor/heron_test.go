package executor_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/executor"
	"egret/test/mesosagent"
)

func heronTask(id string, data []byte) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, Data: data}
}

// Task data that does not parse is TASK_ERROR; heron-executor flags that are refused or
// contradict the task data are TASK_FAILED with REASON_TASK_INVALID; each says what is wrong.
func TestHeronTaskInvalid(t *testing.T) {
	v := newEnv(t)
	e := v.launch(mesosagent.ExecutorSpec{})
	mismatch, err := executor.TaskData{Topology: "wc", Shard: 2, ExecutorFlags: heronFlags("wc", 1)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	badFlag, err := executor.TaskData{Topology: "wc", Shard: 1, ExecutorFlags: []string{"--no-such-flag=1"}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e.LaunchTask(heronTask("json", []byte(`{"format_version":1,"kind":"heron-container","topology":"wc","shard":"x"}`)))
	e.LaunchTask(heronTask("mismatch", mismatch))
	e.LaunchTask(heronTask("flag", badFlag))

	st := v.waitState(e, "json", mesos.TASK_ERROR)
	if st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), "task data") {
		t.Errorf("json: %s %q, want REASON_TASK_INVALID naming the task data", st.GetReason(), st.GetMessage())
	}
	st = v.waitState(e, "mismatch", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), "shard 2") {
		t.Errorf("mismatch: %s %q, want REASON_TASK_INVALID naming the shards", st.GetReason(), st.GetMessage())
	}
	st = v.waitState(e, "flag", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), "no-such-flag") {
		t.Errorf("flag: %s %q, want REASON_TASK_INVALID naming the flag", st.GetReason(), st.GetMessage())
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}

// heronFlags is a heron-executor command line as Heron's schedulers build it, for a release
// extracted into ./heron-core and its configuration in ./heron-conf.
func heronFlags(topology string, shard int) []string {
	return []string{
		"--shard=" + strconv.Itoa(shard),
		"--topology-name=" + topology,
		"--topology-id=" + topology + "-id",
		"--topology-defn-file=" + topology + ".defn",
		"--state-manager-connection=LOCALMODE",
		"--state-manager-root=./state",
		"--state-manager-config-file=./heron-conf/statemgr.yaml",
		"--tmanager-binary=./heron-core/bin/heron-tmanager",
		"--stmgr-binary=./heron-core/bin/heron-stmgr",
		"--metrics-manager-classpath=./heron-core/lib/metricsmgr/*",
		"--instance-jvm-opts=",
		"--classpath=" + topology + ".jar",
		"--heron-internals-config-file=./heron-conf/heron_internals.yaml",
		"--override-config-file=./heron-conf/override.yaml",
		"--component-ram-map=word:1073741824",
		"--component-jvm-opts=",
		"--pkg-type=jar",
		"--topology-binary-file=" + topology + ".jar",
		"--heron-java-home=./heron-core/jdk",
		"--heron-shell-binary=./heron-core/bin/heron-shell",
		"--cluster=mesos",
		"--role=egret",
		"--environment=default",
		"--instance-classpath=./heron-core/lib/instance/*",
		"--metrics-sinks-config-file=./heron-conf/metrics_sinks.yaml",
		"--scheduler-classpath=./heron-core/lib/scheduler/*",
		"--scheduler-port=0",
		"--python-instance-binary=./heron-core/bin/heron-python-instance",
		"--cpp-instance-binary=./heron-core/bin/heron-cpp-instance",
		"--metricscache-manager-classpath=./heron-core/lib/metricscachemgr/*",
		"--metricscache-manager-server-port=0",
		"--metricscache-manager-stats-port=0",
		"--metricscache-manager-mode=disabled",
		"--is-stateful=false",
		"--checkpoint-manager-classpath=./heron-core/lib/ckptmgr/*",
		"--checkpoint-manager-port=0",
		"--checkpoint-manager-ram=1073741824",
		"--stateful-config-file=./heron-conf/stateful.yaml",
		"--health-manager-mode=disabled",
		"--health-manager-classpath=./heron-core/lib/healthmgr/*",
		"--server-port=0",
		"--tmanager-controller-port=0",
		"--tmanager-stats-port=0",
		"--shell-port=0",
		"--metrics-manager-port=0",
	}
}

// A URI that cannot be fetched, or whose checksum does not match, fails the task with a
// message naming the URI and the reason.
func TestHeronTaskBadFetch(t *testing.T) {
	v := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/heron-core.tar.gz" {
			w.Write([]byte("not really a release"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	e := v.launch(mesosagent.ExecutorSpec{Env: []string{"EGRET_CACHE_DIR=" + filepath.Join(v.dir, "cache")}})
	zero := "sha256:" + strings.Repeat("0", 64)
	missing, err := executor.TaskData{Topology: "wc", Shard: 1, ExecutorFlags: heronFlags("wc", 1),
		URIs: []executor.TaskURI{{URI: srv.URL + "/missing.tar.gz", Extract: true}}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	badSum, err := executor.TaskData{Topology: "wc", Shard: 1, ExecutorFlags: heronFlags("wc", 1),
		URIs: []executor.TaskURI{{URI: srv.URL + "/heron-core.tar.gz", Checksum: zero, Extract: true}}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e.LaunchTask(heronTask("missing", missing))
	e.LaunchTask(heronTask("badsum", badSum))
	st := v.waitState(e, "missing", mesos.TASK_FAILED)
	if msg := st.GetMessage(); !strings.Contains(msg, "/missing.tar.gz") || !strings.Contains(msg, "404") {
		t.Errorf("missing: message %q, want the URI and its 404", msg)
	}
	st = v.waitState(e, "badsum", mesos.TASK_FAILED)
	if msg := st.GetMessage(); !strings.Contains(msg, "/heron-core.tar.gz") || !strings.Contains(msg, "checksum mismatch") {
		t.Errorf("badsum: message %q, want the URI and the checksum mismatch", msg)
	}
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	noGenerated(t, e)
}
