package main

import "github.com/urfave/cli/v2"

// topologyCommands returns the commands of issue 6. Placeholder until that issue lands.
func topologyCommands() []*cli.Command { return nil }
