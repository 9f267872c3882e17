package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSuperviseRefusesMalformedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	marker := filepath.Join(t.TempDir(), "ran")
	os.WriteFile(path, []byte("processes:\n  - name: a\n    command: [touch, "+marker+"]\n  - name: b\n    command: [x]\n    restart: {policy: sometimes}\n"), 0o644)
	err := supervise(t.Context(), path, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), path+":6: processes[1].restart.policy") {
		t.Errorf("supervise(bad file) = %v, want file, line and key", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a process ran although the file is malformed")
	}
}

// TestSuperviseSIGTERM runs the real command: SIGTERM stops the processes and
// egret exits 0.
func TestSuperviseSIGTERM(t *testing.T) {
	bin := os.Getenv("EGRET_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "egret")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	conf := filepath.Join(dir, "s.yaml")
	os.WriteFile(conf, []byte("log_dir: logs\nprocesses:\n  - name: s\n    command: [/bin/sh, -c, 'echo $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+" && exec sleep 300']\n"), 0o644)
	cmd := exec.Command(bin, "supervise", conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid = atoiOrZero(strings.TrimSpace(string(b)))
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the supervised process never started; stderr:\n%s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("egret supervise after SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	if syscall.Kill(pid, 0) == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("supervised process %d outlived egret supervise", pid)
	}
	if !strings.Contains(stderr.String(), "stopped   s") {
		t.Errorf("no stopped event printed:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "s.stdout")); err != nil {
		t.Errorf("log file: %v", err)
	}
}

func atoiOrZero(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
