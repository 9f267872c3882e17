package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"egret/proc"

	"github.com/urfave/cli/v2"
)

// superviseCommands returns `egret supervise FILE`: the supervisor on its own.
func superviseCommands() []*cli.Command {
	return []*cli.Command{{
		Name:      "supervise",
		Usage:     "run the processes of a YAML file until SIGINT/SIGTERM, then stop them gracefully",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not print events"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("supervise: want exactly one FILE argument, got %d", c.NArg())
			}
			var out io.Writer = os.Stderr
			if c.Bool("quiet") {
				out = io.Discard
			}
			return supervise(c.Context, c.Args().First(), out)
		},
	}}
}

func supervise(ctx context.Context, file string, out io.Writer) error {
	specs, logDir, err := proc.LoadFile(file)
	if err != nil {
		return fmt.Errorf("supervise: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := proc.New(proc.Options{Specs: specs, LogDir: logDir})
	events, cancel := s.Subscribe()
	defer cancel()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for ev := range events {
			fmt.Fprintln(out, formatEvent(ev))
		}
	}()
	err = s.Run(ctx)
	<-printed
	return err
}

func formatEvent(ev proc.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-9s %s", ev.Time.UTC().Format(time.RFC3339Nano), ev.Type, ev.Name)
	if ev.Pid != 0 {
		fmt.Fprintf(&b, " pid=%d", ev.Pid)
	}
	if ev.Exit != nil {
		fmt.Fprintf(&b, " (%v)", *ev.Exit)
	}
	if ev.WillRestart {
		fmt.Fprintf(&b, " restart in %v", ev.Backoff)
	}
	if ev.Reason != "" {
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	for _, l := range ev.Lines {
		fmt.Fprintf(&b, "\n    | %s", l)
	}
	return b.String()
}
