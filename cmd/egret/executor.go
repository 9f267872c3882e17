package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"egret/executor"
)

// executorCommands returns `egret executor`, the Mesos executor. A Mesos agent starts it
// with its configuration in the environment (docs/mesos-executor.md).
func executorCommands() []*cli.Command {
	return []*cli.Command{{
		Name:  "executor",
		Usage: "run as a Mesos executor (started by a Mesos agent; configured by its environment)",
		Description: "Speaks the Mesos v1 executor HTTP API to the agent named by MESOS_AGENT_ENDPOINT, runs\n" +
			"the tasks it launches (Heron containers described by executor.TaskData, or plain commands)\n" +
			"and exits once every task is terminal and acknowledged. See docs/mesos-executor.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "wire", Usage: "wire format: protobuf or json (default: $EGRET_EXECUTOR_WIRE, else protobuf)"},
			&cli.IntFlag{Name: "max-frame", Value: executor.DefaultMaxFrame, Usage: "largest event accepted on the subscription stream, in bytes"},
		},
		Action: runExecutor,
	}}
}

func runExecutor(c *cli.Context) error {
	cfg, err := executor.ConfigFromEnv(os.Environ())
	if err != nil {
		return err
	}
	// The token authenticates this executor only; its tasks must not inherit it (MESOS-8140).
	_ = os.Unsetenv(executor.EnvAuthToken)
	switch w := c.String("wire"); w {
	case "":
	case executor.WireJSON, executor.WireProtobuf:
		cfg.Wire = w
	default:
		return cli.Exit("egret executor: --wire "+w+": want protobuf or json", 2)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Heron container tasks fetch through egret's fetcher and its cache ($EGRET_CACHE_DIR),
	// the executor's default.
	return executor.RunWith(ctx, cfg, executor.Options{MaxFrame: c.Int("max-frame")})
}
