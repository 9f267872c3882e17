package localsched

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestReservePortsDistinctAndAvoided(t *testing.T) {
	first, err := reservePorts("127.0.0.1", 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	avoid := map[int]bool{}
	for _, p := range first {
		avoid[p] = true
	}
	second, err := reservePorts("127.0.0.1", 9, avoid)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(first, second...) {
		if seen[p] {
			t.Errorf("port %d handed out twice in %v %v", p, first, second)
		}
		seen[p] = true
	}
	if !portsFree("127.0.0.1", first) {
		t.Errorf("portsFree(%v) = false after the reservation was released", first)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if portsFree("127.0.0.1", []int{l.Addr().(*net.TCPAddr).Port}) {
		t.Errorf("portsFree reports a listening port as free")
	}
	if got := portFlags([]int{1, 2}); len(got) != 2 || got[0] != "--server-port=1" || got[1] != "--tmanager-controller-port=2" {
		t.Errorf("portFlags = %v", got)
	}
}

func TestProcessIdentityAndWaitExit(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	reaped := make(chan struct{})
	go func() { cmd.Wait(); close(reaped) }()
	defer func() { killGroup(pid, syscall.SIGKILL); <-reaped }()

	st, err := startTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(pid, st) {
		t.Errorf("alive(%d, %d) = false for a running process", pid, st)
	}
	if alive(pid, st+1) {
		t.Errorf("alive(%d, wrong start time) = true", pid)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := waitExit(ctx, pid); err != context.DeadlineExceeded {
		t.Errorf("waitExit on a running process = %v, want the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- waitExit(context.Background(), pid) }()
	if err := killGroup(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("waitExit = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("waitExit did not return after pid %s died", strconv.Itoa(pid))
	}
	<-reaped
	if alive(pid, st) {
		t.Errorf("alive(%d) = true after exit", pid)
	}
}
