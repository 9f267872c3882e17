package localsched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// startTime returns a process's start time in clock ticks since boot (field
// 22 of /proc/<pid>/stat). A pid and its start time together name one process:
// a recycled pid has a different start time.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatStartTime(string(b))
}

// parseStatStartTime reads field 22 of a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("short /proc stat line")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid with the recorded start time still
// runs (a zombie does not count).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	st, err := parseStatStartTime(string(b))
	if err != nil || st != start {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitExit blocks until the process pid (not necessarily our child) exits or
// ctx ends, through a pidfd: an event, not a poll loop.
func waitExit(ctx context.Context, pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// A pipe wakes poll when ctx ends.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(p[0])
	woke := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		unix.Write(p[1], []byte{0})
		close(woke)
	})
	defer func() {
		if !stop() {
			<-woke // the write must finish before its fd is closed
		}
		unix.Close(p[1])
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll pidfd %d: %w", pid, err)
		}
		if fds[0].Revents != 0 {
			return nil
		}
		return ctx.Err()
	}
}

// killGroup signals the process group led by pid. It never falls back to the
// pid alone: after the leader is gone its pid may belong to someone else.
func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
