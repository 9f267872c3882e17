package executor_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/proto"

	"egret/executor"
	"egret/heron/container"
	"egret/heron/model"
	"egret/heron/statemgr"
	"egret/test/mesosagent"
)

var (
	simOnce sync.Once
	simPath string
	simErr  error
)

// simRelease is $EGRET_SIM_RELEASE, or the simulated release built once (scripts/sim-release.sh).
func simRelease(t *testing.T) string {
	t.Helper()
	simOnce.Do(func() {
		if simPath = os.Getenv("EGRET_SIM_RELEASE"); simPath != "" {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..")
		dir := filepath.Join(filepath.Dir(egretBin), "sim")
		cmd := exec.Command("bash", "scripts/sim-release.sh")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "EGRET="+egretBin, "BUILD_DIR="+dir, "COPY_TO=")
		if out, err := cmd.CombinedOutput(); err != nil {
			simErr = fmt.Errorf("build the simulated release: %v\n%s", err, out)
			return
		}
		simPath = filepath.Join(dir, "heron-core-sim.tar.gz")
	})
	if simErr != nil {
		t.Fatal(simErr)
	}
	return simPath
}

// tarGz builds an archive of files at run time.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ps []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ps
}

// A Heron topology's two containers run as tasks of one executor, fetched from an HTTP
// server (the simulated release and the topology package, with checksums); the simulated
// daemons reach the physical plan; killing the tasks stops every daemon.
func TestHeronContainerReachesPhysicalPlan(t *testing.T) {
	release := simRelease(t)
	v := newEnv(t)
	rel, err := os.ReadFile(release)
	if err != nil {
		t.Fatal(err)
	}
	pkg := tarGz(t, map[string]string{
		"heron-conf/heron_internals.yaml": "heron.logging.directory: \"log-files\"\nheron.logging.maximum.size.mb: 1\nheron.logging.maximum.files: 2\n",
		"heron-conf/override.yaml":        "{}\n",
		"heron-conf/metrics_sinks.yaml":   "sinks: []\n",
		"heron-conf/stateful.yaml":        "{}\n",
		"heron-conf/statemgr.yaml":        "{}\n",
		"wc.defn":                         "simulated",
		"wc.jar":                          "simulated",
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/heron-core.tar.gz":
			w.Write(rel)
		case "/topology.tar.gz":
			w.Write(pkg)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	// The topology's state: the topology and its packing plan, as a scheduler writes them.
	stateDir := filepath.Join(v.dir, "state")
	sm, err := statemgr.NewLocal(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	ctx := context.Background()
	if err := statemgr.SetTopology(ctx, sm, &model.Topology{Id: proto.String("wc-id"), Name: proto.String("wc"),
		State: model.TopologyState_RUNNING.Enum()}); err != nil {
		t.Fatal(err)
	}
	res := func() *model.Resource {
		return &model.Resource{Cpu: proto.Float64(1), Ram: proto.Int64(512 << 20), Disk: proto.Int64(1 << 30)}
	}
	inst := func(c string, task, idx int32) *model.InstancePlan {
		return &model.InstancePlan{ComponentName: proto.String(c), TaskId: proto.Int32(task), ComponentIndex: proto.Int32(idx), Resource: res()}
	}
	if err := statemgr.SetPackingPlan(ctx, sm, "wc", &model.PackingPlan{Id: proto.String("plan-1"), ContainerPlans: []*model.ContainerPlan{
		{Id: proto.Int32(1), RequiredResource: res(), InstancePlans: []*model.InstancePlan{inst("word", 1, 0), inst("count", 2, 0)}},
	}}); err != nil {
		t.Fatal(err)
	}

	e := v.launch(mesosagent.ExecutorSpec{Env: []string{"EGRET_CACHE_DIR=" + filepath.Join(v.dir, "cache")}})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(e.Sandbox(), "tasks", "*", "*.stdout"))
		more, _ := filepath.Glob(filepath.Join(e.Sandbox(), "tasks", "*", "log-files", "*"))
		for _, l := range append(logs, more...) {
			b, _ := os.ReadFile(l)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("%s:\n%s", l, b)
		}
	})
	ports := freePorts(t, 18) // each container has its own ports, as Heron's schedulers give them
	for shard := 0; shard <= 1; shard++ {
		data, err := executor.TaskData{Topology: "wc", TopologyID: "wc-id", Shard: shard,
			ExecutorFlags: shardFlags("wc", shard, stateDir, ports[9*shard:9*shard+9]),
			URIs: []executor.TaskURI{
				{URI: srv.URL + "/heron-core.tar.gz", Checksum: sha(rel), Extract: true, Cache: true},
				{URI: srv.URL + "/topology.tar.gz", Checksum: sha(pkg), Extract: true},
			}}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		e.LaunchTask(heronTask(fmt.Sprintf("wc-%d", shard), data))
	}
	v.waitState(e, "wc-0", mesos.TASK_RUNNING)
	v.waitState(e, "wc-1", mesos.TASK_RUNNING)

	// The physical plan, through a watch on the state.
	wctx, cancel := context.WithTimeout(v.ctx, 60*time.Second)
	defer cancel()
	sig, err := sm.Watch(wctx, statemgr.PhysicalPlans, "wc")
	if err != nil {
		t.Fatal(err)
	}
	for {
		pp, err := statemgr.PhysicalPlan(wctx, sm, "wc")
		if err == nil && len(pp.GetStmgrs()) == 1 && len(pp.GetInstances()) == 2 {
			if id := pp.GetStmgrs()[0].GetId(); id != "stmgr-1" {
				t.Errorf("physical plan stream manager = %s, want stmgr-1", id)
			}
			break
		}
		select {
		case <-sig:
		case <-wctx.Done():
			t.Fatalf("no physical plan with stmgr-1 and 2 instances (last: %v, %v)", pp, err)
		}
	}

	st, err := container.ReadStatus(filepath.Join(e.Sandbox(), "tasks", "wc-1", container.StatusFileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range st.Processes {
		if p.PID > 0 {
			pids = append(pids, p.PID)
		}
	}
	if len(pids) < 4 {
		t.Errorf("shard 1 status lists %d running daemons, want stmgr, metricsmgr, 2 instances, shell", len(pids))
	}
	e.Kill("wc-0", 5*time.Second)
	e.Kill("wc-1", 5*time.Second)
	v.waitState(e, "wc-0", mesos.TASK_KILLED)
	v.waitState(e, "wc-1", mesos.TASK_KILLED)
	if err := v.waitExit(e); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("daemon pid %d still alive after its task was killed", pid)
		}
	}
	noGenerated(t, e)
}

// shardFlags is a shard's heron-executor command line with real ports and a local state root.
func shardFlags(topology string, shard int, stateRoot string, ports []int) []string {
	f := heronFlags(topology, shard)
	set := map[string]string{
		"--state-manager-root":               stateRoot,
		"--heron-java-home":                  "./heron-core/java",
		"--instance-jvm-opts":                container.EncodeJavaOpts(""),
		"--component-jvm-opts":               container.EncodeJavaOpts(""),
		"--component-ram-map":                "word:536870912,count:536870912",
		"--scheduler-port":                   fmt.Sprint(ports[0]),
		"--metricscache-manager-server-port": fmt.Sprint(ports[1]),
		"--metricscache-manager-stats-port":  fmt.Sprint(ports[2]),
		"--checkpoint-manager-port":          fmt.Sprint(ports[3]),
		"--server-port":                      fmt.Sprint(ports[4]),
		"--tmanager-controller-port":         fmt.Sprint(ports[5]),
		"--tmanager-stats-port":              fmt.Sprint(ports[6]),
		"--shell-port":                       fmt.Sprint(ports[7]),
		"--metrics-manager-port":             fmt.Sprint(ports[8]),
	}
	for i, a := range f {
		k, _, _ := strings.Cut(a, "=")
		if v, ok := set[k]; ok {
			f[i] = k + "=" + v
		}
	}
	return f
}
