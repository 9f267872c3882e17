package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ got, want string }{
		{s.HeronCore(), "heron-core"},
		{s.HeronConf(), "heron-conf"},
		{s.LogDir(), "log-files"},
		{s.PidFile("stmgr-1"), "stmgr-1.pid"},
		{s.ExecutorStdout(2), "heron-executor-2.stdout"},
		{s.StatusFile(0), "egret-status-0.json"},
		{s.TopologyDefn("WordCount"), "WordCount.defn"},
	}
	for _, tt := range tests {
		if want := filepath.Join(s.Root(), tt.want); tt.got != want {
			t.Errorf("path = %q, want %q", tt.got, want)
		}
	}
	if _, err := s.File("../escape"); err == nil {
		t.Error(`File("../escape") succeeded, want an error`)
	}
}

func TestCreateCheckUsageRemove(t *testing.T) {
	s, _ := New(filepath.Join(t.TempDir(), "container-1"))
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	err := s.Check()
	if err == nil || !strings.Contains(err.Error(), "heron-core") || !strings.Contains(err.Error(), "heron-conf") {
		t.Fatalf("Check on an empty sandbox = %v, want heron-core and heron-conf named", err)
	}
	os.MkdirAll(filepath.Join(s.HeronCore(), "bin"), 0o755)
	os.MkdirAll(s.HeronConf(), 0o755)
	if err := s.Check(); err != nil {
		t.Fatalf("Check = %v", err)
	}
	os.WriteFile(filepath.Join(s.LogDir(), "x.log"), make([]byte, 1234), 0o644)
	if n, err := s.DiskUsage(); err != nil || n != 1234 {
		t.Errorf("DiskUsage = %d, %v; want 1234", n, err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Root()); !os.IsNotExist(err) {
		t.Errorf("sandbox still there: %v", err)
	}
}
