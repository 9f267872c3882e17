package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"egret/heron/container"
)

// heronExecutorCommands returns `egret heron-executor`, a drop-in for Heron's
// heron-executor. Flags are Heron's (--key=value), parsed by the container
// runtime, so urfave/cli does not parse them.
func heronExecutorCommands() []*cli.Command {
	return []*cli.Command{{
		Name:            "heron-executor",
		Usage:           "run one Heron container (drop-in for Heron's heron-executor)",
		ArgsUsage:       "--shard=N --topology-name=... (every flag of Heron's heron-executor; see docs/heron-executor.md)",
		SkipFlagParsing: true,
		Action:          runHeronExecutor,
	}}
}

func runHeronExecutor(c *cli.Context) error {
	args := c.Args().Slice()
	for _, a := range args {
		if a == "--help" || a == "-h" {
			fmt.Fprintf(c.App.Writer, "usage: egret heron-executor --key=value ... (or heron-executor under that name)\n\n"+
				"Runs one Heron container as Heron's heron-executor does (docs/heron-executor.md).\n\nflags:\n  --%s\n",
				strings.Join(container.FlagNames(), "\n  --"))
			return nil
		}
	}
	flags, err := container.ParseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := container.Options{Flags: flags}
	if flags.DryRun {
		opts.Log = os.Stderr
	}
	ct, err := container.New(opts)
	if err != nil {
		return err
	}
	if flags.DryRun {
		ps, err := ct.DryRun(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ps)
	}
	return ct.Run(ctx)
}
