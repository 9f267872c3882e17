package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		give    string
		want    procInfo
		wantErr bool
	}{
		{give: "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 8192 100",
			want: procInfo{PID: 42, PPID: 1, PGID: 42, State: 'S', Comm: "sleep", StartTime: 12345}},
		{give: "7 (a) b (c)) Z 3 9 9 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 99 8192 100",
			want: procInfo{PID: 7, PPID: 3, PGID: 9, State: 'Z', Comm: "a) b (c)", StartTime: 99}},
		{give: "7 (x) S 1 2", wantErr: true},
		{give: "7 x S 1 2", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStat(tt.want.PID, []byte(tt.give))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseStat(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("parseStat(%q) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	procs := map[int]procInfo{
		1: {PID: 1}, 10: {PID: 10, PPID: 1}, 11: {PID: 11, PPID: 10}, 12: {PID: 12, PPID: 11},
		13: {PID: 13, PPID: 10}, 20: {PID: 20, PPID: 1},
	}
	got := descendants(procs, 10)
	want := []int{11, 12, 13}
	if len(got) != len(want) {
		t.Fatalf("descendants(10) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("descendants(10) = %v, want %v", got, want)
		}
	}
}

// TestTrackerFindsDetachedDaemon starts a shell that detaches a grandchild into its own
// session and exits, as egret's scheduler daemon does: the tracker must still find it
// (by its marker) and end it.
func TestTrackerFindsDetachedDaemon(t *testing.T) {
	dir := t.TempDir()
	tr := newTracker("EGRET_CHAOS_RUN=test-"+filepath.Base(dir), dir)
	pidFile := filepath.Join(dir, "pid")
	out, err := tr.run(context.Background(), "sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "+pidFile)
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	daemon := strings.TrimSpace(string(b))
	ours := tr.ours()
	found := false
	for _, pid := range ours {
		if itoa(pid) == daemon {
			found = true
		}
	}
	if !found {
		t.Fatalf("tracker.ours() = %v, want it to include the detached daemon %s", ours, daemon)
	}
	left := tr.cleanup()
	if len(left) != 1 || !strings.Contains(left[0], "sleep") {
		t.Errorf("cleanup() = %q, want the one sleep daemon", left)
	}
	if got := tr.ours(); len(got) != 0 {
		t.Errorf("after cleanup, ours() = %v, want none", got)
	}
}

func TestFdCountAndRSS(t *testing.T) {
	pid := os.Getpid()
	n, err := fdCount(pid)
	if err != nil || n < 3 {
		t.Errorf("fdCount(self) = %d, %v; want at least 3", n, err)
	}
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fdCount(pid)
	f.Close()
	if m != n+1 {
		t.Errorf("fdCount after one open = %d, want %d", m, n+1)
	}
	rss, err := rssBytes(pid)
	if err != nil || rss < 1<<20 {
		t.Errorf("rssBytes(self) = %d, %v; want over 1 MiB", rss, err)
	}
}

func TestWaitGone(t *testing.T) {
	tr := newTracker("EGRET_CHAOS_RUN=waitgone", "")
	b, err := tr.start(context.Background(), "", "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	pid := b.cmd.Process.Pid
	if err := waitGone(pid, 50*time.Millisecond); err == nil {
		t.Fatalf("waitGone(live sleep) = nil, want a timeout")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := waitGone(pid, 5*time.Second); err != nil {
		t.Errorf("waitGone(killed sleep) = %v", err)
	}
	<-b.done
}

func TestSelectScenarios(t *testing.T) {
	all := []scenario{{name: "a"}, {name: "b"}, {name: "c"}}
	got, err := selectScenarios(all, "c, a")
	if err != nil || len(got) != 2 || got[0].name != "a" || got[1].name != "c" {
		t.Errorf("selectScenarios(c,a) = %v, %v; want [a c] in registry order", got, err)
	}
	if _, err := selectScenarios(all, "a,zz"); err == nil || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("selectScenarios(a,zz) error = %v, want one naming zz", err)
	}
}
