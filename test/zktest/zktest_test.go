package zktest

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestServerLifecycle(t *testing.T) {
	var pid int
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		pid = s.Pid()
		if out, err := s.FourLetter("srvr"); err != nil || !strings.Contains(out, "Mode: standalone") {
			t.Fatalf("srvr = %q, %v", out, err)
		}
		if host, _, _ := net.SplitHostPort(s.Addr()); host != "127.0.0.1" {
			t.Errorf("Addr %s is not on loopback", s.Addr())
		}
		s.Restart()
		if s.Pid() == pid || s.Pid() == 0 {
			t.Errorf("Restart kept pid %d", pid)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("the stopped server %d still runs", pid)
		}
		pid = s.Pid()
		s.Partition()
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Error("a partitioned client got data")
			}
			c.Close()
		}
		s.Heal()
	})
	// The subtest's cleanup killed the server by pid.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server %d outlived its test", pid)
	}
}
