package main

// `egret framework`: the Mesos framework (scheduler) of one topology, started
// detached by `egret submit mesos` (and again by any command that finds it
// gone), or by systemd. The mesos cluster's client is wired into the topology
// commands here.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"egret/framework"

	"github.com/urfave/cli/v2"
)

func newMesosClient(ctx context.Context, t target) (clusterClient, error) {
	return framework.NewClient(ctx, framework.ClientOptions{
		Cluster: t.Cluster, Role: t.Role, Environment: t.Environment,
		ConfigPath: t.ConfigPath, ConfigProperties: t.ConfigProperties, ConfigFiles: t.ConfigFiles,
		ConfigLoader: t.ConfigLoader, Verbose: t.Verbose, DryRun: t.DryRun, DryRunFormat: t.DryRunFormat,
		Out: t.Out, Err: t.Err,
	})
}

// frameworkCommands returns `egret framework`.
func frameworkCommands() []*cli.Command {
	return []*cli.Command{{
		Name:  "framework",
		Usage: "run the Mesos framework of one topology (started by `egret submit mesos`, or by systemd)",
		Description: "Subscribes to the Mesos master as the topology's framework (re-using the framework id\n" +
			"saved in the state manager), runs one task per container under `egret executor`, and\n" +
			"serves Heron's scheduler API (/kill, /restart, /update) and /status. One per topology.",
		Flags: append(configFlags(),
			&cli.StringFlag{Name: "cluster", Required: true, Usage: "`CLUSTER[/ROLE[/ENV]]` of the topology"},
			&cli.StringFlag{Name: "topology", Required: true, Usage: "topology `NAME`"},
			&cli.IntFlag{Name: "ready-fd", Value: -1, Usage: "file descriptor on which to report that the framework is subscribed"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("framework: unexpected argument %q", c.Args().First()))
			}
			t, err := newTarget(c, c.String("cluster"))
			if err != nil {
				return err
			}
			if len(t.ConfigFiles) > 1 {
				return usageError(fmt.Errorf("framework: --config-file given %d times; one at most", len(t.ConfigFiles)))
			}
			opts := framework.Options{
				Cluster: t.Cluster, Role: t.Role, Environment: t.Environment, Topology: c.String("topology"),
				ConfigPath: t.ConfigPath, ConfigProperties: t.ConfigProperties, ConfigLoader: t.ConfigLoader,
				Log: t.Err,
			}
			if len(t.ConfigFiles) == 1 {
				opts.ConfigFile = t.ConfigFiles[0]
			}
			if fd := c.Int("ready-fd"); fd >= 0 {
				opts.Ready = os.NewFile(uintptr(fd), "ready")
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return framework.Run(ctx, opts)
		},
	}}
}
