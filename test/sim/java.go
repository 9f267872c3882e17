package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// JavaVersion is what the stand-in java reports to the executor's probe.
const JavaVersion = "11.0.20"

// runJava plays a JVM: it checks the JVM options, finds the main class and
// runs the simulated daemon of that class.
func runJava(ctx context.Context, args []string) error {
	i := 0
	cp := ""
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-cp" || a == "-classpath":
			if i+1 >= len(args) {
				return usagef("%s needs a value", a)
			}
			i++
			cp = args[i]
		case a == "-version":
			fmt.Printf("openjdk version %q (heron-sim)\n", JavaVersion)
			return nil
		case strings.HasPrefix(a, "-X"), strings.HasPrefix(a, "-D"), strings.HasPrefix(a, "-agentlib:"),
			a == "-verbosegc", a == "-server":
		case strings.HasPrefix(a, "-"):
			return usagef("unrecognized JVM option %q", a)
		default:
			goto main
		}
	}
main:
	if i >= len(args) {
		return usagef("no main class")
	}
	if cp == "" {
		return usagef("no -cp")
	}
	class, rest := args[i], args[i+1:]
	switch class {
	case "org.apache.heron.instance.util.JvmVersion":
		fmt.Println(JavaVersion)
		return nil
	case "org.apache.heron.metricsmgr.MetricsManager":
		return runMetricsManager(ctx, rest)
	case "org.apache.heron.metricscachemgr.MetricsCacheManager":
		return runMetricsCache(ctx, rest)
	case "org.apache.heron.healthmgr.HealthManager":
		return runHealthManager(ctx, rest)
	case "org.apache.heron.ckptmgr.CheckpointManager":
		return runCheckpointManager(ctx, rest)
	case "org.apache.heron.instance.HeronInstance":
		return runJavaInstance(ctx, rest)
	}
	return usagef("could not find or load main class %s", class)
}

// runListener is a daemon whose whole observable behaviour is its ports.
func runListener(ctx context.Context, name string, ports ...int) error {
	d, err := startDaemon(ctx, name)
	if err != nil {
		return err
	}
	g, ctx := newGroup(ctx)
	for _, p := range ports {
		l, err := listen(p)
		if err != nil {
			g.stop()
			g.Wait()
			return fmtErr(name, err)
		}
		d.serveTCP(ctx, g, l)
	}
	fmt.Printf("%s: listening on %v\n", name, ports)
	<-ctx.Done()
	fmt.Printf("%s: stopping\n", name)
	return g.Wait()
}

func runMetricsManager(ctx context.Context, args []string) error {
	m, err := strictFlags("MetricsManager", args, "id", "port", "topology", "cluster", "role", "environment",
		"topology-id", "system-config-file", "override-config-file", "sink-config-file")
	if err != nil {
		return err
	}
	p, err := portOf(m, "port")
	if err != nil {
		return err
	}
	return runListener(ctx, m["id"], p)
}

func runMetricsCache(ctx context.Context, args []string) error {
	m, err := strictFlags("MetricsCacheManager", args, "metricscache_id", "server_port", "stats_port",
		"topology_name", "topology_id", "system_config_file", "override_config_file", "sink_config_file",
		"cluster", "role", "environment")
	if err != nil {
		return err
	}
	sp, err := portOf(m, "server_port")
	if err != nil {
		return err
	}
	st, err := portOf(m, "stats_port")
	if err != nil {
		return err
	}
	return runListener(ctx, "heron-metricscache", sp, st)
}

func runHealthManager(ctx context.Context, args []string) error {
	m, err := strictFlags("HealthManager", args, "cluster", "role", "environment", "topology_name", "metricsmgr_port")
	if err != nil {
		return err
	}
	if _, err := portOf(m, "metricsmgr_port"); err != nil {
		return err
	}
	return runListener(ctx, "heron-healthmgr")
}

func runCheckpointManager(ctx context.Context, args []string) error {
	m, err := shortFlags(args, "ticpfog")
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(m['p'])
	if err != nil || p <= 0 || p > 65535 {
		return usagef("option -p: not a port: %q", m['p'])
	}
	return runListener(ctx, m['c'], p)
}

var instanceFlags = []string{"topology_name", "topology_id", "instance_id", "component_name", "task_id",
	"component_index", "stmgr_id", "stmgr_port", "metricsmgr_port"}

func runJavaInstance(ctx context.Context, args []string) error {
	// -remote_debugger_port is optional: strip it before the strict parse.
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-remote_debugger_port" && i+1 < len(args) {
			i++
			continue
		}
		rest = append(rest, args[i])
	}
	m, err := strictFlags("HeronInstance", rest, append(instanceFlags, "system_config_file", "override_config_file")...)
	if err != nil {
		return err
	}
	return runInstance(ctx, m)
}

func runNativeInstance(ctx context.Context, role string, args []string) error {
	names := append(instanceFlags, "config_file", "override_config_file")
	if role == "heron-python-instance" {
		names = append(names, "topology_pex", "max_ram")
	} else {
		names = append(names, "topology_binary")
	}
	m, err := strictFlags(role, args, names...)
	if err != nil {
		return err
	}
	return runInstance(ctx, m)
}

// runInstance connects to its stream manager's local data port and stays
// connected, reconnecting when the stream manager restarts.
func runInstance(ctx context.Context, m map[string]string) error {
	port, err := portOf(m, "stmgr_port")
	if err != nil {
		return err
	}
	d, err := startDaemon(ctx, m["instance_id"])
	if err != nil {
		return err
	}
	_ = d
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		var dialer net.Dialer
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 50 * time.Millisecond
		fmt.Fprintf(c, "INSTANCE %s %s %s\n", m["instance_id"], m["component_name"], m["task_id"])
		fmt.Printf("%s: connected to %s at %s\n", m["instance_id"], m["stmgr_id"], addr)
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				c.Close()
			case <-done:
			}
		}()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
		}
		close(done)
		c.Close()
		if ctx.Err() == nil {
			fmt.Printf("%s: lost %s, reconnecting\n", m["instance_id"], m["stmgr_id"])
		}
	}
	fmt.Printf("%s: stopping\n", m["instance_id"])
	return nil
}
