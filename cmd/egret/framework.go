package main

import "github.com/urfave/cli/v2"

// frameworkCommands returns the commands of issue 8. Placeholder until that issue lands.
func frameworkCommands() []*cli.Command { return nil }
