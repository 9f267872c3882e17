package localsched

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// The end-to-end tests drive the real egret binary with the simulated Heron
// release: $EGRET_BIN and $EGRET_SIM_RELEASE when set (make test), otherwise
// both are built once into a temporary directory.

var (
	buildOnce          sync.Once
	builtBin, builtSim string
	buildErr           error
	buildDir           string
)

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func binaries(t *testing.T) (egret, sim string) {
	t.Helper()
	if b, s := os.Getenv("EGRET_BIN"), os.Getenv("EGRET_SIM_RELEASE"); b != "" && s != "" {
		return b, s
	}
	buildOnce.Do(func() {
		root := moduleRoot(t)
		buildDir, buildErr = os.MkdirTemp("", "egret-localsched-test-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "egret")
		out, err := exec.Command("go", "build", "-o", builtBin, filepath.Join(root, "cmd", "egret")).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "sim-release.sh"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "EGRET="+builtBin, "BUILD_DIR="+filepath.Join(buildDir, "build"), "COPY_TO=")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("sim-release.sh: %v\n%s", err, out)
			return
		}
		builtSim = filepath.Join(buildDir, "build", "heron-core-sim.tar.gz")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin, builtSim
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cluster is one egret cluster for a test: its own HOME (state, working
// directories, cache) and configuration properties.
type cluster struct {
	t     *testing.T
	name  string
	home  string
	egret string
	sim   string
	props []string
}

func newCluster(t *testing.T, name string, props ...string) *cluster {
	egret, sim := binaries(t)
	c := &cluster{t: t, name: name, home: t.TempDir(), egret: egret, sim: sim,
		props: append([]string{"egret.scheduler.local.restart.backoff.initial=100ms", "egret.scheduler.local.kill.grace=3s"}, props...)}
	t.Cleanup(c.sweep)
	return c
}

// run runs one egret command and returns its stdout, stderr and error.
func (c *cluster) run(args ...string) (string, string, error) {
	c.t.Helper()
	for _, p := range c.props {
		args = append(args, "--config-property", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.egret, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.home, "EGRET_SIM_RELEASE="+c.sim, "EGRET_CACHE_DIR="+filepath.Join(c.home, "cache"))
	cmd.Dir = c.home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (c *cluster) ok(args ...string) string {
	c.t.Helper()
	out, errs, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("egret %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

func (c *cluster) fails(want string, args ...string) string {
	c.t.Helper()
	out, errs, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("egret %s succeeded, want a failure mentioning %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	if strings.Contains(errs, "goroutine ") || strings.Contains(errs, "panic:") {
		c.t.Errorf("egret %s printed a stack trace:\n%s", strings.Join(args, " "), errs)
	}
	if !strings.Contains(errs, want) {
		c.t.Errorf("egret %s: stderr %q does not mention %q", strings.Join(args, " "), errs, want)
	}
	return errs
}

func (c *cluster) workdir(topology string) workdir {
	u, _ := userName()
	return workdir(filepath.Join(c.home, ".herondata", "topologies", c.name, u, topology))
}

func userName() (string, error) {
	out, err := exec.Command("id", "-un").Output()
	return strings.TrimSpace(string(out)), err
}

func (c *cluster) status(topology string) TopologyStatus {
	c.t.Helper()
	var st TopologyStatus
	out := c.ok("status", c.name, topology, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("status --json: %v: %s", err, out)
	}
	return st
}

// await polls status until cond holds: the state lives in other processes'
// files, and no event reaches the test.
func (c *cluster) await(topology, what string, cond func(TopologyStatus) bool) TopologyStatus {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st TopologyStatus
	for time.Now().Before(deadline) {
		st = c.status(topology)
		if cond(st) {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("%s: never %s; last status %+v", topology, what, st)
	return st
}

// sweep ends every process left under the test's HOME, by pid; a test that
// needed it has a bug, so it also fails the test.
func (c *cluster) sweep() {
	left := processesUnder(c.home)
	if len(left) == 0 {
		return
	}
	var desc []string
	for _, pid := range left {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		desc = append(desc, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pid := range left {
		waitExit(ctx, pid)
	}
	c.t.Errorf("processes left behind:\n  %s", strings.Join(desc, "\n  "))
}

func running(st TopologyStatus) bool { return st.State == "running" }

func (c *cluster) noProcesses(topology string) {
	c.t.Helper()
	if left := processesUnder(string(c.workdir(topology))); len(left) > 0 {
		c.t.Errorf("after kill, processes %v still run in %s", left, c.workdir(topology))
	}
}

// wordCountPackage writes a topology.tar.gz for the word count topology (a
// Heron .defn and a placeholder jar), as Heron's CLI would build it.
func wordCountPackage(t *testing.T, stmgrs int) string {
	t.Helper()
	kv := func(k, v string) *model.Config_KeyValue {
		return &model.Config_KeyValue{Key: proto.String(k), Value: proto.String(v), Type: model.ConfigValueType_STRING_VALUE.Enum()}
	}
	comp := func(name string, par int) *model.Component {
		return &model.Component{Name: proto.String(name), ClassName: proto.String("egret.example." + name),
			Spec:   model.ComponentObjectSpec_JAVA_CLASS_NAME.Enum(),
			Config: &model.Config{Kvs: []*model.Config_KeyValue{kv("topology.component.parallelism", strconv.Itoa(par))}}}
	}
	schema := func(field string) *model.StreamSchema {
		return &model.StreamSchema{Keys: []*model.StreamSchema_KeyType{{Key: proto.String(field), Type: model.Type_OBJECT.Enum()}}}
	}
	out := func(comp, field string) []*model.OutputStream {
		return []*model.OutputStream{{Stream: &model.StreamId{Id: proto.String("default"), ComponentName: proto.String(comp)}, Schema: schema(field)}}
	}
	in := func(comp string, g model.Grouping, fields *model.StreamSchema) []*model.InputStream {
		return []*model.InputStream{{Stream: &model.StreamId{Id: proto.String("default"), ComponentName: proto.String(comp)}, Gtype: g.Enum(), GroupingFields: fields}}
	}
	topo := &model.Topology{
		Id: proto.String(wc + "-0123456789abcdef"), Name: proto.String(wc), State: model.TopologyState_RUNNING.Enum(),
		Spouts: []*model.Spout{{Comp: comp("sentence", 2), Outputs: out("sentence", "sentence")}},
		Bolts: []*model.Bolt{
			{Comp: comp("split", 2), Inputs: in("sentence", model.Grouping_SHUFFLE, nil), Outputs: out("split", "word")},
			{Comp: comp("count", 3), Inputs: in("split", model.Grouping_FIELDS, schema("word"))},
		},
		TopologyConfig: &model.Config{Kvs: []*model.Config_KeyValue{kv("topology.stmgrs", strconv.Itoa(stmgrs)),
			kv("topology.component.rammap", "sentence:536870912,split:536870912,count:536870912")}},
	}
	defn, err := proto.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "topology.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, data := range map[string][]byte{wc + ".defn": defn, wc + ".jar": []byte("PK placeholder")} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	f.Close()
	return path
}

// killOnFailure kills the topology when the test fails before its own kill,
// so the sweep finds nothing to report but the failure itself.
func (c *cluster) killOnFailure(topology string) {
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.run("kill", c.name, topology)
		}
	})
}
