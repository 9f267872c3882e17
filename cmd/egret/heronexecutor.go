package main

import (
	"encoding/json"
	"os"
	"os/signal"
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
			return cli.ShowCommandHelp(c, "heron-executor")
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
