// Command heron-sim is egret's simulated Heron release: one multi-call binary
// standing in for heron-tmanager, heron-stmgr, heron-shell, the Python and C++
// instances, and a `java` that answers the executor's JVM-version probe and
// runs Heron's Java main classes (metrics manager, metrics cache, health
// manager, checkpoint manager, instances). Each parses exactly the flags
// Heron's executor gives it, binds its ports, talks to the state manager like
// the real daemon as far as the control plane can see, and obeys the faults
// scripted for it in the sandbox's fault file (see faults.go).
//
// The role comes from the name it is invoked under (argv[0]), or from the
// first argument when invoked as heron-sim.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() { os.Exit(run(os.Args)) }

// usageError marks bad command lines, which exit 2 like a flag package would.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func run(argv []string) int {
	role := filepath.Base(argv[0])
	args := argv[1:]
	if role == "heron-sim" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: heron-sim <heron-tmanager|heron-stmgr|heron-shell|heron-python-instance|heron-cpp-instance|java> [args]")
			return 2
		}
		role, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch role {
	case "heron-tmanager":
		err = runTManager(ctx, args)
	case "heron-stmgr":
		err = runStmgr(ctx, args)
	case "heron-shell":
		err = runShell(ctx, args)
	case "heron-python-instance", "heron-cpp-instance":
		err = runNativeInstance(ctx, role, args)
	case "java":
		err = runJava(ctx, args)
	default:
		err = usagef("unknown role %q", role)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ee exitCode
	if errors.As(err, &ee) {
		return int(ee)
	}
	return 1
}

// exitCode is an error that asks for a specific exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
