package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FaultFile is the file, in the daemon's working directory (the sandbox),
// that scripts faults. One fault per line:
//
//	<process-name-glob> <fault> [key=value ...]
//
// Faults:
//
//	crash      after=<duration> code=<exit code>   print a last line and exit
//	hang       after=<duration>                    stop answering, ignore SIGTERM
//	unhealthy                                      fail health checks (HTTP 503, TCP refused)
//	slow-start delay=<duration>                    wait before binding ports
//
// Blank lines and lines starting with # are ignored. Every matching line applies.
const FaultFile = "heron-sim-faults.txt"

type fault struct {
	kind  string
	after time.Duration
	code  int
}

// parseFaults returns the faults for process name from the file's content.
func parseFaults(content, name string) ([]fault, error) {
	var out []fault
	sc := bufio.NewScanner(strings.NewReader(content))
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want <process-glob> <fault> [key=value...]", FaultFile, line)
		}
		ok, err := path.Match(fields[0], name)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad pattern %q: %w", FaultFile, line, fields[0], err)
		}
		f := fault{kind: fields[1], code: 1}
		switch f.kind {
		case "crash", "hang", "unhealthy", "slow-start":
		default:
			return nil, fmt.Errorf("%s:%d: unknown fault %q (want crash, hang, unhealthy or slow-start)", FaultFile, line, f.kind)
		}
		for _, kv := range fields[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "after", "delay":
				d, err := time.ParseDuration(v)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %w", FaultFile, line, k, err)
				}
				f.after = d
			case "code":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: code: %w", FaultFile, line, err)
				}
				f.code = n
			default:
				return nil, fmt.Errorf("%s:%d: unknown option %q", FaultFile, line, k)
			}
		}
		if ok {
			out = append(out, f)
		}
	}
	return out, sc.Err()
}

// daemon is what every simulated process shares: its name, its faults.
type daemon struct {
	name      string
	unhealthy bool
}

// startDaemon reads the fault file, applies slow start and arms crash and
// hang timers. It announces the daemon on stdout, which the executor logs.
func startDaemon(ctx context.Context, name string) (*daemon, error) {
	d := &daemon{name: name}
	var faults []fault
	if b, err := os.ReadFile(FaultFile); err == nil {
		if faults, err = parseFaults(string(b), name); err != nil {
			return nil, err
		}
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", FaultFile, err)
	}
	fmt.Printf("%s: starting (pid %d)\n", name, os.Getpid())
	for _, f := range faults {
		switch f.kind {
		case "slow-start":
			fmt.Printf("%s: injected slow start of %s\n", name, f.after)
			select {
			case <-time.After(f.after):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case "unhealthy":
			d.unhealthy = true
		case "crash":
			code := f.code
			time.AfterFunc(f.after, func() {
				fmt.Printf("%s: injected crash, exiting with code %d\n", name, code)
				os.Exit(code)
			})
		case "hang":
			if f.after == 0 {
				// At once, before the ports are bound: whoever sees them
				// bound knows SIGTERM is already ignored.
				signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
				fmt.Printf("%s: injected hang: ignoring SIGTERM\n", name)
				continue
			}
			time.AfterFunc(f.after, func() {
				fmt.Printf("%s: injected hang\n", name)
				signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
				select {} // every other goroutine keeps running, but nothing answers SIGTERM
			})
		}
	}
	return d, nil
}
