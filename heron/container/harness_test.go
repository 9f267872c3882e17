package container

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Test binaries: $EGRET_BIN and $EGRET_SIM_RELEASE when set (make test),
// otherwise built once into a temporary directory.
var (
	binOnce    sync.Once
	binErr     error
	egretBin   string
	simRelease string
	binTmp     string
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func testBinaries(t *testing.T) (egret, release string) {
	t.Helper()
	binOnce.Do(func() {
		egretBin, simRelease = os.Getenv("EGRET_BIN"), os.Getenv("EGRET_SIM_RELEASE")
		if egretBin != "" && simRelease != "" {
			return
		}
		binTmp, binErr = os.MkdirTemp("", "egret-container-test")
		if binErr != nil {
			return
		}
		if egretBin == "" {
			egretBin = filepath.Join(binTmp, "egret")
			cmd := exec.Command("go", "build", "-o", egretBin, "./cmd/egret")
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("build egret: %v\n%s", err, out)
				return
			}
		}
		if simRelease == "" {
			cmd := exec.Command("bash", "scripts/sim-release.sh")
			cmd.Dir = repoRoot()
			cmd.Env = append(os.Environ(), "EGRET="+egretBin, "BUILD_DIR="+binTmp, "COPY_TO=")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("build the simulated release: %v\n%s", err, out)
				return
			}
			simRelease = filepath.Join(binTmp, "heron-core-sim.tar.gz")
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return egretBin, simRelease
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binTmp != "" {
		os.RemoveAll(binTmp)
	}
	if code == 0 {
		// Every Container.Run returned: none of its goroutines may remain.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// freePorts returns n ports that were free a moment ago and that no other
// call in this test process returned.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var ls []net.Listener
	var ps []int
	for len(ps) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if p := l.Addr().(*net.TCPAddr).Port; !given[p] {
			given[p] = true
			ps = append(ps, p)
		}
	}
	for _, l := range ls {
		l.Close()
	}
	return ps
}

// makeSandbox makes a container directory: the simulated release extracted,
// heron-conf with the files the daemons are given, and the topology definition.
func makeSandbox(t *testing.T, release, topology string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", release, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v\n%s", release, err, out)
	}
	conf := filepath.Join(dir, "heron-conf")
	os.MkdirAll(conf, 0o755)
	files := map[string]string{
		"heron_internals.yaml": "heron.logging.directory: \"log-files\"\nheron.logging.maximum.size.mb: 1\nheron.logging.maximum.files: 2\n",
		"override.yaml":        "{}\n",
		"metrics_sinks.yaml":   "sinks: []\n",
		"stateful.yaml":        "{}\n",
		"statemgr.yaml":        "{}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, topology+".defn"), []byte("simulated"), 0o644)
	os.WriteFile(filepath.Join(dir, topology+".jar"), []byte("simulated"), 0o644)
	return dir
}

// shardArgs is the executor command line of one shard, with ports shared by
// every shard's flags the way Heron gives them (one set per container).
func shardArgs(shard int, topology, conn, root string, ports []int, extra ...string) []string {
	p := func(i int) string { return fmt.Sprint(ports[i]) }
	args := []string{
		fmt.Sprintf("--shard=%d", shard),
		"--topology-name=" + topology,
		"--topology-id=" + topology + "-id",
		"--topology-defn-file=" + topology + ".defn",
		"--state-manager-connection=" + conn,
		"--state-manager-root=" + root,
		"--state-manager-config-file=./heron-conf/statemgr.yaml",
		"--tmanager-binary=./heron-core/bin/heron-tmanager",
		"--stmgr-binary=./heron-core/bin/heron-stmgr",
		"--metrics-manager-classpath=./heron-core/lib/metricsmgr/*",
		"--instance-jvm-opts=" + EncodeJavaOpts(""),
		"--classpath=" + topology + ".jar",
		"--heron-internals-config-file=./heron-conf/heron_internals.yaml",
		"--override-config-file=./heron-conf/override.yaml",
		"--component-ram-map=word:536870912,count:536870912",
		"--component-jvm-opts=" + EncodeJavaOpts(""),
		"--pkg-type=jar",
		"--topology-binary-file=" + topology + ".jar",
		"--heron-java-home=./heron-core/java",
		"--heron-shell-binary=./heron-core/bin/heron-shell",
		"--cluster=local",
		"--role=tester",
		"--environment=default",
		"--instance-classpath=./heron-core/lib/instance/*",
		"--metrics-sinks-config-file=./heron-conf/metrics_sinks.yaml",
		"--scheduler-classpath=./heron-core/lib/scheduler/*",
		"--scheduler-port=" + p(0),
		"--python-instance-binary=./heron-core/bin/heron-python-instance",
		"--cpp-instance-binary=./heron-core/bin/heron-cpp-instance",
		"--metricscache-manager-classpath=./heron-core/lib/metricscachemgr/*",
		"--metricscache-manager-server-port=" + p(1),
		"--metricscache-manager-stats-port=" + p(2),
		"--metricscache-manager-mode=disabled",
		"--is-stateful=false",
		"--checkpoint-manager-classpath=./heron-core/lib/ckptmgr/*",
		"--checkpoint-manager-port=" + p(3),
		"--checkpoint-manager-ram=1073741824",
		"--stateful-config-file=./heron-conf/stateful.yaml",
		"--health-manager-mode=disabled",
		"--health-manager-classpath=./heron-core/lib/healthmgr/*",
		"--server-port=" + p(4),
		"--tmanager-controller-port=" + p(5),
		"--tmanager-stats-port=" + p(6),
		"--shell-port=" + p(7),
		"--metrics-manager-port=" + p(8),
		"--restart-backoff=20ms/200ms",
		"--stop-grace=3s",
	}
	return append(args, extra...)
}
