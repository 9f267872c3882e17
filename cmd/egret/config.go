package main

import "github.com/urfave/cli/v2"

// configCommands returns the commands of issue 4. Placeholder until that issue lands.
func configCommands() []*cli.Command { return nil }
