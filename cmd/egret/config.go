package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"egret/config"
	"egret/heron/topology"
)

// configCommands returns `egret config dump CLUSTER` and `egret topology build SPEC.yaml`.
func configCommands() []*cli.Command {
	return []*cli.Command{topologyBuildCommand(), {
		Name:  "config",
		Usage: "show Heron configuration as egret reads it",
		Subcommands: []*cli.Command{{
			Name:      "dump",
			Usage:     "print the effective configuration of a cluster and where each value came from",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config-path", Usage: "directory holding one directory per cluster (default ~/.heron/conf, else built in)"},
				&cli.StringSliceFlag{Name: "config-property", Usage: "override a key: key=value (repeatable)"},
				&cli.StringFlag{Name: "config-file", Usage: "an old flat key:value configuration file"},
				&cli.StringFlag{Name: "config-loader", Usage: "loader for --config-file: local, localzk, mesos or a Heron loader class"},
				&cli.StringFlag{Name: "topology", Usage: "topology name for ${TOPOLOGY}"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 1 {
					return fmt.Errorf("config dump: one CLUSTER expected, got %d arguments", c.NArg())
				}
				cluster, role, env := splitClusterArg(c.Args().First())
				cfg, err := config.Load(config.Options{
					ConfigPath: c.String("config-path"), Cluster: cluster, Role: role, Environ: env,
					Topology: c.String("topology"), Properties: c.StringSlice("config-property"),
					ConfigFile: c.String("config-file"), Loader: c.String("config-loader"),
				})
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.App.Writer, cfg.Dump())
				return err
			},
		}},
	}}
}

// splitClusterArg splits Heron's cluster/[role]/[env] argument.
func splitClusterArg(s string) (cluster, role, env string) {
	parts := splitN(s, '/', 3)
	cluster = parts[0]
	if len(parts) > 1 {
		role = parts[1]
	}
	if len(parts) > 2 {
		env = parts[2]
	}
	return cluster, role, env
}

func splitN(s string, sep byte, n int) []string {
	var out []string
	for len(out) < n-1 {
		i := -1
		for j := 0; j < len(s); j++ {
			if s[j] == sep {
				i = j
				break
			}
		}
		if i < 0 {
			break
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return append(out, s)
}

func topologyBuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "topology",
		Usage: "work with topology specs and packages",
		Subcommands: []*cli.Command{{
			Name:      "build",
			Usage:     "turn a topology spec (YAML) into <name>.defn and topology.tar.gz, laid out as Heron's CLI does",
			ArgsUsage: "SPEC.yaml",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: ".", Usage: "directory to write <name>.defn and topology.tar.gz into"},
				&cli.StringFlag{Name: "cluster", Value: "local", Usage: "cluster whose configuration goes into the package's heron-conf/"},
				&cli.StringFlag{Name: "config-path", Usage: "directory holding one directory per cluster (default ~/.heron/conf, else built in)"},
				&cli.StringSliceFlag{Name: "config-property", Usage: "override a key in heron-conf/override.yaml: key=value (repeatable)"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("topology build: one SPEC.yaml expected, got %d arguments", c.NArg())
				}
				spec, err := topology.LoadSpec(c.Args().First())
				if err != nil {
					return err
				}
				cluster, role, env := splitClusterArg(c.String("cluster"))
				cfg, err := config.Load(config.Options{ConfigPath: c.String("config-path"), Cluster: cluster, Role: role,
					Environ: env, Topology: spec.Name, Properties: c.StringSlice("config-property")})
				if err != nil {
					return err
				}
				res, err := topology.Build(spec, c.String("output"), cfg)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.App.Writer, "%s\n%s\n", res.Defn, res.Package)
				return err
			},
		}},
	}
}
