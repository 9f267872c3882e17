package main

import "github.com/urfave/cli/v2"

// heronExecutorCommands returns the commands of issue 5. Placeholder until that issue lands.
func heronExecutorCommands() []*cli.Command { return nil }
