// Command egret runs Apache Heron topologies on one machine and on Mesos.
//
// Each sub-command lives in its own file; this file only assembles them, turns
// errors into messages and exit codes, and makes egret answer as Heron's
// heron-executor when it is invoked under that name.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// version is set at link time by the Makefile.
var version = "dev"

// exitError carries an exit status other than 1 up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newApp() *cli.App {
	return &cli.App{
		Name:                 "egret",
		Usage:                "run Apache Heron topologies on one machine and on Mesos",
		Version:              version,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		// Errors are printed once, by main, without a stack trace.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       commands(),
	}
}

// commands lists every sub-command. Each file adds its own constructor here.
func commands() []*cli.Command {
	var cmds []*cli.Command
	cmds = append(cmds, superviseCommands()...)
	cmds = append(cmds, fetchCommands()...)
	cmds = append(cmds, configCommands()...)
	cmds = append(cmds, heronExecutorCommands()...)
	cmds = append(cmds, executorCommands()...)
	cmds = append(cmds, frameworkCommands()...)
	cmds = append(cmds, topologyCommands()...)
	return cmds
}

// args returns the arguments to parse. Invoked as heron-executor (through a
// link at heron-core/bin/heron-executor), egret is `egret heron-executor`.
func args(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) == "heron-executor" {
		return append([]string{"egret", "heron-executor"}, argv[1:]...)
	}
	return argv
}

func main() {
	if err := newApp().Run(reorderTopologyArgs(args(os.Args))); err != nil {
		fmt.Fprintf(os.Stderr, "egret: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		var ce cli.ExitCoder
		if errors.As(err, &ce) && ce.ExitCode() != 0 {
			os.Exit(ce.ExitCode())
		}
		os.Exit(1)
	}
}
