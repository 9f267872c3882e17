package proc

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

func itoa(i int) string { return strconv.Itoa(i) }

func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
