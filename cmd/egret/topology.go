package main

// The topology commands: Heron's CLI (submit, activate, deactivate, restart,
// kill, update) plus status, list, logs, version and the local scheduler
// daemon. Each command parses its arguments, builds a target (cluster, role,
// environment, configuration flags) and hands the work to the cluster's client;
// no command branches on the kind of cluster.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"egret/localsched"

	"github.com/urfave/cli/v2"
)

// clusterClient is what every command needs of a cluster. Implemented by
// localsched's client (local, localzk) and by the framework's (mesos). Only
// builtin types cross it, so each implementation lives in its own package.
type clusterClient interface {
	// Submit launches the topology in a package (topology.tar.gz) or spec
	// (.yaml); in dry-run mode it prints the packing plan and the container
	// commands instead.
	Submit(ctx context.Context, pkg string, deployDeactivated bool) error
	Activate(ctx context.Context, topology string) error
	Deactivate(ctx context.Context, topology string) error
	// Restart restarts one container, or all of them when container is -1.
	Restart(ctx context.Context, topology string, container int) error
	Kill(ctx context.Context, topology string) error
	// Update changes parallelisms (component → N) and/or the container count
	// (0: unchanged), or sends runtime configuration ([component:]name:value).
	Update(ctx context.Context, topology string, parallelism map[string]int, containers int, runtimeConfig []string) error
	// Status writes the topology's status to the target's Out, as a table or JSON.
	Status(ctx context.Context, topology string, asJSON bool) error
	List(ctx context.Context) ([]string, error)
}

// logReader is implemented by clients whose containers' logs are on this host.
type logReader interface {
	Logs(ctx context.Context, topology string, container int, process string, follow bool) error
}

// target is what every topology command resolves before reaching a client.
type target struct {
	Cluster, Role, Environment string
	ConfigPath                 string
	ConfigProperties           []string // k=v, never split on commas
	ConfigFiles                []string
	ConfigLoader               string
	Verbose                    bool
	DryRun                     bool
	DryRunFormat               string // table or json
	Out, Err                   io.Writer
}

// clientFactory builds a cluster's client for a target.
type clientFactory func(ctx context.Context, t target) (clusterClient, error)

// clusterClients maps a cluster name to its client. The framework adds its
// cluster here with one line.
var clusterClients = map[string]clientFactory{
	"local":   newLocalClient,
	"localzk": newLocalClient,
	"mesos":   newMesosClient,
}

func clientFor(ctx context.Context, t target) (clusterClient, error) {
	f, ok := clusterClients[t.Cluster]
	if !ok {
		names := make([]string, 0, len(clusterClients))
		for n := range clusterClients {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown cluster %q (known clusters: %s)", t.Cluster, strings.Join(names, ", "))
	}
	return f(ctx, t)
}

// parseClusterRoleEnv splits Heron's CLUSTER[/ROLE[/ENV]] argument. The role
// defaults to the user, the environment to "default".
func parseClusterRoleEnv(s, defaultRole string) (cluster, role, env string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return "", "", "", fmt.Errorf("%q: want CLUSTER[/ROLE[/ENV]], got %d parts", s, len(parts))
	}
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	cluster, role, env = parts[0], parts[1], parts[2]
	if cluster == "" {
		return "", "", "", fmt.Errorf("%q: the cluster is empty (want CLUSTER[/ROLE[/ENV]])", s)
	}
	if role == "" {
		role = defaultRole
	}
	if env == "" {
		env = "default"
	}
	for _, p := range []struct{ what, v string }{{"cluster", cluster}, {"role", role}, {"environment", env}} {
		if !namePattern.MatchString(p.v) {
			return "", "", "", fmt.Errorf("%q: %s %q may hold only letters, digits, '.', '_' and '-'", s, p.what, p.v)
		}
	}
	return cluster, role, env, nil
}

var namePattern = regexp.MustCompile(`^[\w.-]+$`)

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "nobody"
}

// reorderArgs moves a command's flags in front of its positional arguments,
// because urfave/cli stops parsing flags at the first positional argument while
// Heron's CLI accepts flags anywhere. args starts after the command name. A
// flag that takes a value keeps its value with it; "--" ends the flags.
func reorderArgs(args []string, flags []cli.Flag) []string {
	boolean := map[string]bool{"help": true, "h": true}
	valued := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			if isBool {
				boolean[n] = true
			} else {
				valued[n] = true
			}
		}
	}
	var fl, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || isNumber(a) {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			fl = append(fl, a)
			continue
		}
		fl = append(fl, a)
		if valued[name] && i+1 < len(args) {
			fl = append(fl, args[i+1])
			i++
		}
	}
	return append(fl, pos...)
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// reorderTopologyArgs applies reorderArgs when argv names one of the topology
// commands; other commands' arguments pass unchanged.
func reorderTopologyArgs(argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	for _, c := range topologyCommands() {
		if c.HasName(argv[1]) && !c.SkipFlagParsing {
			out := append([]string{argv[0], argv[1]}, reorderArgs(argv[2:], c.Flags)...)
			return out
		}
	}
	return argv
}

// repeated is a repeatable string flag that never splits its values on
// commas: ZooKeeper connection strings and runtime configs contain them.
type repeated []string

func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeated) String() string     { return strings.Join(*r, " ") }

func repeatedValue(c *cli.Context, name string) []string {
	if g, ok := c.Generic(name).(*repeated); ok && g != nil {
		return []string(*g)
	}
	return nil
}

// configFlags are Heron's flags every topology command takes.
func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config-path", Usage: "directory holding one configuration directory per cluster (default: egret's embedded configuration)"},
		&cli.GenericFlag{Name: "config-property", Value: &repeated{}, Usage: "override a configuration key: `KEY=VALUE` (repeatable; values may contain commas)"},
		&cli.GenericFlag{Name: "config-file", Value: &repeated{}, Usage: "a flat configuration `FILE` (one key:value a line, as Heron's first Mesos guide writes it), read over the cluster's"},
		&cli.StringFlag{Name: "config-loader", Usage: "the configuration `LOADER` for --config-file, by Heron class name (org.apache.heron.scheduler.mesos.MesosConfigLoader) or short name (mesos, local, localzk)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print more of what happens"},
	}
}

func dryRunFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Usage: "print the packing plan (and the container commands) without changing anything"},
		&cli.StringFlag{Name: "dry-run-format", Value: "table", Usage: "`FORMAT` of the dry run: table or json"},
	}
}

// newTarget resolves the CLUSTER[/ROLE[/ENV]] argument and the configuration flags.
func newTarget(c *cli.Context, clusterArg string) (target, error) {
	cluster, role, env, err := parseClusterRoleEnv(clusterArg, currentUser())
	if err != nil {
		return target{}, usageError(err)
	}
	t := target{
		Cluster: cluster, Role: role, Environment: env,
		ConfigPath:       c.String("config-path"),
		ConfigProperties: repeatedValue(c, "config-property"),
		ConfigFiles:      repeatedValue(c, "config-file"),
		ConfigLoader:     c.String("config-loader"),
		Verbose:          c.Bool("verbose"),
		Out:              c.App.Writer,
		Err:              c.App.ErrWriter,
	}
	if t.Err == nil {
		t.Err = os.Stderr
	}
	for _, p := range t.ConfigProperties {
		if k, _, ok := strings.Cut(p, "="); !ok || strings.TrimSpace(k) == "" {
			return target{}, usageError(fmt.Errorf("--config-property %q: want KEY=VALUE", p))
		}
	}
	if c.IsSet("dry-run") || c.IsSet("dry-run-format") {
		t.DryRun = c.Bool("dry-run")
		switch f := c.String("dry-run-format"); f {
		case "table", "json":
			t.DryRunFormat = f
		case "raw", "colored_table":
			t.DryRunFormat = "table"
		default:
			return target{}, usageError(fmt.Errorf("--dry-run-format %q: want table or json", f))
		}
	}
	return t, nil
}

// usageError marks a mistake in the command line: exit status 2.
func usageError(err error) error { return &exitError{code: 2, err: err} }

// positional checks the number of positional arguments.
func positional(c *cli.Context, min, max int, usage string) ([]string, error) {
	a := c.Args().Slice()
	if len(a) < min || len(a) > max {
		return nil, usageError(fmt.Errorf("%s: want %s, got %d argument(s)", c.Command.Name, usage, len(a)))
	}
	return a, nil
}

func withClient(c *cli.Context, min, max int, usage string, run func(ctx context.Context, cl clusterClient, t target, args []string) error) error {
	args, err := positional(c, min, max, usage)
	if err != nil {
		return err
	}
	t, err := newTarget(c, args[0])
	if err != nil {
		return err
	}
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	cl, err := clientFor(ctx, t)
	if err != nil {
		return usageError(err)
	}
	return run(ctx, cl, t, args[1:])
}

var (
	parallelismPattern   = regexp.MustCompile(`^([\w.-]+):(\d+)$`)
	runtimeConfigPattern = regexp.MustCompile(`^([\w.-]+:){1,2}[\w.-]+$`)
)

// parseUpdate validates update's flags as Heron's CLI does: parallelism
// and/or container number, or runtime config, at least one.
func parseUpdate(parallelism []string, containers string, runtimeConfig []string) (map[string]int, int, error) {
	if len(parallelism) == 0 && containers == "" && len(runtimeConfig) == 0 {
		return nil, 0, errors.New("update: give --component-parallelism, --container-number or --runtime-config")
	}
	if len(runtimeConfig) > 0 && (len(parallelism) > 0 || containers != "") {
		return nil, 0, errors.New("update: --runtime-config cannot be combined with --component-parallelism or --container-number")
	}
	for _, r := range runtimeConfig {
		if !runtimeConfigPattern.MatchString(r) {
			return nil, 0, fmt.Errorf("--runtime-config %q: want [COMPONENT:]NAME:VALUE", r)
		}
	}
	par := map[string]int{}
	for _, p := range parallelism {
		m := parallelismPattern.FindStringSubmatch(p)
		if m == nil {
			return nil, 0, fmt.Errorf("--component-parallelism %q: want COMPONENT:N", p)
		}
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 {
			return nil, 0, fmt.Errorf("--component-parallelism %q: the parallelism must be at least 1", p)
		}
		if _, dup := par[m[1]]; dup {
			return nil, 0, fmt.Errorf("--component-parallelism %q: component %s given twice", p, m[1])
		}
		par[m[1]] = n
	}
	n := 0
	if containers != "" {
		v, err := strconv.Atoi(containers)
		if err != nil || v < 1 {
			return nil, 0, fmt.Errorf("--container-number %q: want a whole number of at least 1", containers)
		}
		n = v
	}
	return par, n, nil
}

// parseContainer reads restart's optional container argument (-1: all).
func parseContainer(args []string, what string) (int, error) {
	if len(args) == 0 {
		return -1, nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < -1 {
		return 0, usageError(fmt.Errorf("%s %q: want a container index (0, 1, ...)", what, args[0]))
	}
	return n, nil
}

func topologyCommands() []*cli.Command {
	cfg := configFlags()
	with := func(extra ...[]cli.Flag) []cli.Flag {
		out := append([]cli.Flag{}, cfg...)
		for _, e := range extra {
			out = append(out, e...)
		}
		return out
	}
	simple := func(name, usage string, do func(cl clusterClient, ctx context.Context, topology string) error) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] TOPOLOGY",
			Flags:     with(),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 2, "CLUSTER[/ROLE[/ENV]] TOPOLOGY", func(ctx context.Context, cl clusterClient, _ target, a []string) error {
					return do(cl, ctx, a[0])
				})
			},
		}
	}
	return []*cli.Command{
		{
			Name:      "submit",
			Usage:     "submit a topology (a topology.tar.gz package or a .yaml spec) to a cluster",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] PACKAGE-OR-SPEC",
			Flags: with(dryRunFlags(), []cli.Flag{
				&cli.BoolFlag{Name: "deploy-deactivated", Usage: "start the topology paused"},
			}),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 2, "CLUSTER[/ROLE[/ENV]] PACKAGE-OR-SPEC", func(ctx context.Context, cl clusterClient, _ target, a []string) error {
					if _, err := os.Stat(a[0]); err != nil {
						return usageError(fmt.Errorf("topology package %s: %w", a[0], unwrapPathError(err)))
					}
					return cl.Submit(ctx, a[0], c.Bool("deploy-deactivated"))
				})
			},
		},
		simple("activate", "resume a paused topology", func(cl clusterClient, ctx context.Context, t string) error { return cl.Activate(ctx, t) }),
		simple("deactivate", "pause a running topology", func(cl clusterClient, ctx context.Context, t string) error { return cl.Deactivate(ctx, t) }),
		simple("kill", "stop a topology and remove its state", func(cl clusterClient, ctx context.Context, t string) error { return cl.Kill(ctx, t) }),
		{
			Name:      "restart",
			Usage:     "restart one container of a topology, or all of them",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] TOPOLOGY [CONTAINER]",
			Flags:     with(),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 3, "CLUSTER[/ROLE[/ENV]] TOPOLOGY [CONTAINER]", func(ctx context.Context, cl clusterClient, _ target, a []string) error {
					n, err := parseContainer(a[1:], "container")
					if err != nil {
						return err
					}
					return cl.Restart(ctx, a[0], n)
				})
			},
		},
		{
			Name:      "update",
			Usage:     "change a running topology's parallelism, container count or runtime configuration",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] TOPOLOGY",
			Flags: with(dryRunFlags(), []cli.Flag{
				&cli.GenericFlag{Name: "component-parallelism", Value: &repeated{}, Usage: "new parallelism `COMPONENT:N` (repeatable)"},
				&cli.StringFlag{Name: "container-number", Usage: "new number of containers `N`"},
				&cli.GenericFlag{Name: "runtime-config", Value: &repeated{}, Usage: "runtime configuration `[COMPONENT:]NAME:VALUE` sent to the topology manager (repeatable)"},
			}),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 2, "CLUSTER[/ROLE[/ENV]] TOPOLOGY", func(ctx context.Context, cl clusterClient, _ target, a []string) error {
					par, n, err := parseUpdate(repeatedValue(c, "component-parallelism"), c.String("container-number"), repeatedValue(c, "runtime-config"))
					if err != nil {
						return usageError(err)
					}
					return cl.Update(ctx, a[0], par, n, repeatedValue(c, "runtime-config"))
				})
			},
		},
		{
			Name:      "status",
			Usage:     "show every container and process of a topology",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] TOPOLOGY",
			Flags:     with([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}}),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 2, "CLUSTER[/ROLE[/ENV]] TOPOLOGY", func(ctx context.Context, cl clusterClient, _ target, a []string) error {
					return cl.Status(ctx, a[0], c.Bool("json"))
				})
			},
		},
		{
			Name:      "list",
			Usage:     "list the topologies of a cluster",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]]",
			Flags:     with(),
			Action: func(c *cli.Context) error {
				return withClient(c, 1, 1, "CLUSTER[/ROLE[/ENV]]", func(ctx context.Context, cl clusterClient, t target, _ []string) error {
					names, err := cl.List(ctx)
					if err != nil {
						return err
					}
					for _, n := range names {
						fmt.Fprintln(t.Out, n)
					}
					return nil
				})
			},
		},
		{
			Name:      "logs",
			Usage:     "print the scheduler's log, a container's executor log, or one process's log",
			ArgsUsage: "CLUSTER[/ROLE[/ENV]] TOPOLOGY [CONTAINER [PROCESS]]",
			Flags:     with([]cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing what is appended"}}),
			Action: func(c *cli.Context) error {
				return withClient(c, 2, 4, "CLUSTER[/ROLE[/ENV]] TOPOLOGY [CONTAINER [PROCESS]]", func(ctx context.Context, cl clusterClient, t target, a []string) error {
					lr, ok := cl.(logReader)
					if !ok {
						return fmt.Errorf("logs: the %s cluster keeps its logs elsewhere (see its documentation)", t.Cluster)
					}
					n, err := parseContainer(a[1:], "container")
					if err != nil {
						return err
					}
					process := ""
					if len(a) > 2 {
						process = a[2]
					}
					return lr.Logs(ctx, a[0], n, process, c.Bool("follow"))
				})
			},
		},
		{
			Name:  "version",
			Usage: "print egret's version",
			Action: func(c *cli.Context) error {
				fmt.Fprintf(c.App.Writer, "egret %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			},
		},
		schedulerCommand(),
	}
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func newLocalClient(ctx context.Context, t target) (clusterClient, error) {
	return localsched.NewClient(ctx, localsched.ClientOptions{
		Cluster: t.Cluster, Role: t.Role, Environment: t.Environment,
		ConfigPath: t.ConfigPath, ConfigProperties: t.ConfigProperties, ConfigFiles: t.ConfigFiles,
		ConfigLoader: t.ConfigLoader, Verbose: t.Verbose, DryRun: t.DryRun, DryRunFormat: t.DryRunFormat,
		Out: t.Out, Err: t.Err,
	})
}

// schedulerCommand is the local scheduler daemon, started detached by submit
// (or by systemd); one per topology.
func schedulerCommand() *cli.Command {
	return &cli.Command{
		Name:   "scheduler",
		Usage:  "run the local scheduler daemon of one topology (started by submit)",
		Hidden: false,
		Flags: append(configFlags(),
			&cli.StringFlag{Name: "cluster", Required: true, Usage: "`CLUSTER[/ROLE[/ENV]]` of the topology"},
			&cli.StringFlag{Name: "topology", Required: true, Usage: "topology `NAME`"},
			&cli.StringFlag{Name: "working-directory", Usage: "override heron.scheduler.local.working.directory"},
			&cli.IntFlag{Name: "ready-fd", Value: -1, Usage: "file descriptor on which to report that the containers started"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("scheduler: unexpected argument %q", c.Args().First()))
			}
			t, err := newTarget(c, c.String("cluster"))
			if err != nil {
				return err
			}
			opts := localsched.Options{
				Cluster: t.Cluster, Role: t.Role, Environment: t.Environment,
				Topology:   c.String("topology"),
				ConfigPath: t.ConfigPath, ConfigProperties: t.ConfigProperties, ConfigFiles: t.ConfigFiles,
				ConfigLoader:     t.ConfigLoader,
				WorkingDirectory: c.String("working-directory"),
				Log:              t.Err,
			}
			if fd := c.Int("ready-fd"); fd >= 0 {
				opts.Ready = os.NewFile(uintptr(fd), "ready")
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return localsched.Run(ctx, opts)
		},
	}
}
