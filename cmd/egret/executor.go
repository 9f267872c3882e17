package main

import "github.com/urfave/cli/v2"

// executorCommands returns the commands of issue 7. Placeholder until that issue lands.
func executorCommands() []*cli.Command { return nil }
