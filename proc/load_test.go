package proc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sup.yaml")
	yaml := `log_dir: ./logs
processes:
  - name: web
    command: ["/bin/sh", "-c", "exec sleep 1000"]
    dir: /tmp
    env: {KEY: value}
    restart: {policy: on-failure, initial_backoff: 0s, max_backoff: 30s, jitter: 0.5, stable_after: 1m, budget: {restarts: 10, window: 10m}}
    stop_signal: INT
    stop_grace: 5s
    health: {tcp: "127.0.0.1:8080", delay: 1s, interval: 2s, timeout: 1s, consecutive_failures: 3, grace: 10s, action: report}
    logs: {max_size: 10MiB, max_files: 5}
  - name: plain
    command: [sleep, "1"]
    detach: true
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	specs, logDir, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if logDir != filepath.Join(dir, "logs") {
		t.Errorf("log dir = %q, want it resolved against the file's directory", logDir)
	}
	want := Spec{
		Name: "web", Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}, Dir: "/tmp", Env: map[string]string{"KEY": "value"},
		Restart:    RestartPolicy{Mode: RestartOnFailure, MaxBackoff: 30 * time.Second, Jitter: 0.5, StableAfter: time.Minute, Budget: Budget{Restarts: 10, Window: 10 * time.Minute}},
		StopSignal: syscall.SIGINT, StopGrace: 5 * time.Second,
		Health: &HealthCheck{TCP: "127.0.0.1:8080", Delay: time.Second, Interval: 2 * time.Second, Timeout: time.Second, ConsecutiveFailures: 3, Grace: 10 * time.Second, Action: HealthReport},
		Logs:   LogPolicy{MaxSize: 10 << 20, MaxFiles: 5},
	}
	if len(specs) != 2 || !specs[0].Equal(&want) {
		t.Fatalf("LoadFile = %+v\nwant %+v", specs, want)
	}
	if p := specs[1]; !p.Detach || p.Restart != FileRestartDefaults {
		t.Errorf("second process %+v: want detach and the default restart policy", p)
	}
}

func TestLoadMalformed(t *testing.T) {
	const head = "processes:\n  - name: a\n    command: [sleep, \"1\"]\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"syntax", "processes: [\n", "sup.yaml:"},
		{"empty", "", "sup.yaml:0: empty file"},
		{"not a mapping", "- a\n", "sup.yaml:1: want a mapping"},
		{"no processes", "log_dir: x\n", "sup.yaml:1: processes: missing"},
		{"unknown top key", "logdir: x\n" + head, "sup.yaml:1: logdir: unknown key"},
		{"unknown process key", head + "    comand: [x]\n", "sup.yaml:4: processes[0].comand: unknown key"},
		{"missing name", "processes:\n  - command: [x]\n", "sup.yaml:2: processes[0].name: missing"},
		{"missing command", "processes:\n  - name: a\n", "sup.yaml:2: processes[0].command: missing"},
		{"command not a list", "processes:\n  - name: a\n    command: sleep 1\n", "sup.yaml:3: processes[0].command: want a list"},
		{"duplicate name", head + "  - name: a\n    command: [x]\n", "sup.yaml:4: processes[1].name: process \"a\" already defined at line 2"},
		{"bad duration", head + "    stop_grace: 5\n", "sup.yaml:4: processes[0].stop_grace: bad duration \"5\""},
		{"bad policy", head + "    restart: {policy: sometimes}\n", "sup.yaml:4: processes[0].restart.policy: unknown policy \"sometimes\""},
		{"unknown restart key", head + "    restart: {backoff: 1s}\n", "sup.yaml:4: processes[0].restart.backoff: unknown key"},
		{"budget without window", head + "    restart: {budget: {restarts: 3}}\n", "sup.yaml:4: processes[0].restart.budget.window: missing"},
		{"bad budget count", head + "    restart: {budget: {restarts: many, window: 1m}}\n", "processes[0].restart.budget.restarts: bad count"},
		{"bad jitter", head + "    restart: {jitter: 2}\n", "processes[0].restart.jitter: bad fraction"},
		{"bad signal", head + "    stop_signal: NOPE\n", "sup.yaml:4: processes[0].stop_signal: unknown signal \"NOPE\""},
		{"two health kinds", head + "    health: {tcp: \"127.0.0.1:1\", http: \"http://x/\"}\n", "sup.yaml:4: processes[0].health: want exactly one of exec, tcp, http"},
		{"no health kind", head + "    health: {delay: 1s}\n", "processes[0].health: want exactly one"},
		{"bad tcp", head + "    health: {tcp: localhost}\n", "processes[0].health.tcp: bad address"},
		{"bad http", head + "    health: {http: \"ftp://x\"}\n", "processes[0].health.http: bad URL"},
		{"bad action", head + "    health: {tcp: \"127.0.0.1:1\", action: reboot}\n", "processes[0].health.action: unknown action"},
		{"unknown health key", head + "    health: {tcp: \"127.0.0.1:1\", retries: 3}\n", "processes[0].health.retries: unknown key"},
		{"bad size", head + "    logs: {max_size: 10 parsecs}\n", "processes[0].logs.max_size: bad size"},
		{"zero files", head + "    logs: {max_files: 0}\n", "processes[0].logs.max_files: must be at least 1"},
		{"unknown logs key", head + "    logs: {rotate: yes}\n", "processes[0].logs.rotate: unknown key"},
		{"env not a map", head + "    env: [A=1]\n", "processes[0].env: want a mapping"},
		{"duplicate key", head + "    dir: /a\n    dir: /b\n", "sup.yaml:5: processes[0].dir: given twice"},
		{"bad name", "processes:\n  - name: a/b\n    command: [x]\n", "sup.yaml:2: processes[0]: process \"a/b\": name must be usable as a file name"},
	}
	for _, tt := range tests {
		_, _, err := Load("sup.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Load error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	if _, _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("LoadFile(missing) = %v, want an error naming the file", err)
	}
}
