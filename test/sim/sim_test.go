package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	content := `# comment
container_1_* crash after=2s code=3
stmgr-1 hang
heron-shell-? unhealthy
metricsmgr-1 slow-start delay=500ms
`
	tests := []struct {
		name string
		want []fault
	}{
		{"container_1_word_1", []fault{{kind: "crash", after: 2 * time.Second, code: 3}}},
		{"stmgr-1", []fault{{kind: "hang", code: 1}}},
		{"heron-shell-1", []fault{{kind: "unhealthy", code: 1}}},
		{"metricsmgr-1", []fault{{kind: "slow-start", after: 500 * time.Millisecond, code: 1}}},
		{"metricsmgr-0", nil},
	}
	for _, tt := range tests {
		got, err := parseFaults(content, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseFaults(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"x explode", "x crash after=soon", "x", "[ crash", "x crash color=red"} {
		if _, err := parseFaults(bad, "x"); err == nil || !strings.Contains(err.Error(), FaultFile+":1") {
			t.Errorf("parseFaults(%q) error = %v, want one naming %s:1", bad, err, FaultFile)
		}
	}
}

var (
	buildOnce sync.Once
	simBin    string
	buildErr  error
)

// simBinary builds heron-sim once per test run.
func simBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "heron-sim-test")
		if err != nil {
			buildErr = err
			return
		}
		simBin = filepath.Join(dir, "heron-sim")
		out, err := exec.Command("go", "build", "-o", simBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return simBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if simBin != "" {
		os.RemoveAll(filepath.Dir(simBin))
	}
	os.Exit(code)
}

type simProc struct {
	cmd *exec.Cmd
	out *syncBuffer
	err chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startSim runs heron-sim as role in dir and ends it when the test ends.
func startSim(t *testing.T, dir, role string, args ...string) *simProc {
	t.Helper()
	cmd := exec.Command(simBinary(t), append([]string{role}, args...)...)
	cmd.Dir = dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &simProc{cmd: cmd, out: out, err: make(chan error, 1)}
	go func() { p.err <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.err
	})
	return p
}

func (p *simProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.err:
		p.err <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("process did not exit within %s; output:\n%s", d, p.out.String())
		return -1
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitDial waits until port accepts connections (no event exists for "bound").
func waitDial(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("port %d never accepted a connection", port)
}

func TestJavaProbeAndFlags(t *testing.T) {
	dir := t.TempDir()
	p := startSim(t, dir, "java", "-cp", "./heron-core/lib/instance/*", "org.apache.heron.instance.util.JvmVersion")
	if code := p.wait(t, 10*time.Second); code != 0 || strings.TrimSpace(p.out.String()) != JavaVersion {
		t.Errorf("JvmVersion probe: exit %d, output %q", code, p.out.String())
	}
	p = startSim(t, dir, "java", "-Xmx1024M", "-cp", "x", "org.apache.heron.metricsmgr.MetricsManager", "--id=metricsmgr-1", "--bogus=1")
	if code := p.wait(t, 10*time.Second); code != 2 || !strings.Contains(p.out.String(), "bogus") {
		t.Errorf("unknown flag: exit %d, output %q", code, p.out.String())
	}
	p = startSim(t, dir, "java", "-cp", "x", "org.apache.heron.metricsmgr.MetricsManager", "--id=metricsmgr-1", "--port=1")
	if code := p.wait(t, 10*time.Second); code != 2 || !strings.Contains(p.out.String(), "missing flag") {
		t.Errorf("missing flags: exit %d, output %q", code, p.out.String())
	}
	p = startSim(t, dir, "java", "-cp", "x", "com.example.Nope")
	if code := p.wait(t, 10*time.Second); code != 2 || !strings.Contains(p.out.String(), "com.example.Nope") {
		t.Errorf("unknown class: exit %d, output %q", code, p.out.String())
	}
}

func metricsmgrArgs(port int) []string {
	return []string{"-Xmx1024M", "-XX:+PrintCommandLineFlags", "-Djava.net.preferIPv4Stack=true", "-XX:+UseG1GC",
		"-cp", "./heron-core/lib/metricsmgr/*", "org.apache.heron.metricsmgr.MetricsManager",
		"--id=metricsmgr-1", fmt.Sprintf("--port=%d", port), "--topology=wc", "--cluster=local", "--role=me",
		"--environment=default", "--topology-id=wc-1", "--system-config-file=a", "--override-config-file=b",
		"--sink-config-file=c"}
}

func TestMetricsManagerBindsAndStops(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startSim(t, dir, "java", metricsmgrArgs(port)...)
	waitDial(t, port)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit after SIGTERM = %d, want 0; output:\n%s", code, p.out.String())
	}
}

func TestFaultCrashAndSlowStart(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FaultFile), []byte("metricsmgr-1 crash after=100ms code=7\n"), 0o644)
	p := startSim(t, dir, "java", metricsmgrArgs(freePort(t))...)
	if code := p.wait(t, 10*time.Second); code != 7 || !strings.Contains(p.out.String(), "injected crash") {
		t.Errorf("crash fault: exit %d, output %q", code, p.out.String())
	}
	os.WriteFile(filepath.Join(dir, FaultFile), []byte("metricsmgr-* slow-start delay=300ms\n"), 0o644)
	port := freePort(t)
	start := time.Now()
	startSim(t, dir, "java", metricsmgrArgs(port)...)
	waitDial(t, port)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("slow start bound after %s, want at least 300ms", d)
	}
}

func TestFaultHangIgnoresSIGTERM(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FaultFile), []byte("metricsmgr-1 hang\n"), 0o644)
	port := freePort(t)
	p := startSim(t, dir, "java", metricsmgrArgs(port)...)
	waitDial(t, port)
	// The hang is armed at start with no delay; wait for its announcement.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.out.String(), "injected hang") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.err:
		t.Fatalf("hung daemon exited on SIGTERM: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	p.cmd.Process.Kill()
	if code := p.wait(t, 5*time.Second); code != -1 {
		t.Errorf("exit after SIGKILL = %d, want -1 (signal)", code)
	}
}

func TestShellHealth(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	args := []string{fmt.Sprintf("--port=%d", port), "--log_file_prefix=log-files/heron-shell-1.log", "--secret=wc-1"}
	startSim(t, dir, "heron-shell", args...)
	waitDial(t, port)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health = %d, want 200", resp.StatusCode)
	}
	os.WriteFile(filepath.Join(dir, FaultFile), []byte("heron-shell-2 unhealthy\n"), 0o644)
	port2 := freePort(t)
	startSim(t, dir, "heron-shell", fmt.Sprintf("--port=%d", port2), "--log_file_prefix=log-files/heron-shell-2.log", "--secret=wc-1")
	waitDial(t, port2)
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port2))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health with unhealthy fault = %d, want 503", resp.StatusCode)
	}
}

func TestRegisterLineRoundTrip(t *testing.T) {
	s := stmgrInfo{ID: "stmgr-2", Host: "127.0.0.1", DataPort: 1, LocalDataPort: 2, ShellPort: 3, PID: 4, Cwd: "/sb", Instances: []string{"container_2_a_1", "container_2_b_2"}}
	got, err := parseRegister(strings.TrimSpace(s.registerLine()))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(s) {
		t.Errorf("parseRegister(registerLine) = %+v, %v; want %+v", got, err, s)
	}
	s.Instances = nil
	if got, err := parseRegister(strings.TrimSpace(s.registerLine())); err != nil || got.Instances != nil {
		t.Errorf("no instances: %+v, %v", got, err)
	}
	for _, bad := range []string{"HELLO", "REGISTER a b c d e f g h", "REGISTER a h x 2 3 4 /c -"} {
		if _, err := parseRegister(bad); err == nil {
			t.Errorf("parseRegister(%q) succeeded", bad)
		}
	}
}
