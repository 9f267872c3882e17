// Command bench runs egret's benchmarks and prints one table: figure, value,
// floor, goal. A floor is measured in the same run (a bare loop doing the
// same work without egret), because absolute numbers depend on the machine.
//
// Each suite lives in its own file and registers itself in an init function:
//
//	func init() { register("fetch", "artifact fetching", runFetch) }
//
// where runFetch(ctx, *Env) ([]Row, error) returns its rows. `go run ./bench
// -only proc,fetch` runs some suites; by default all run, in name order.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
)

// Row is one line of the table. Met is nil when there is no goal to check.
type Row struct {
	Figure string
	Value  string
	Floor  string
	Goal   string
	Met    *bool
}

// Env is what every suite gets.
type Env struct {
	Egret string // path of the egret binary (bin/egret)
	Tmp   string // a scratch directory removed at the end
	Self  string // this binary, for suites that re-execute it as a helper
	Quick bool   // smaller sample sizes, for a smoke run
	Log   io.Writer
}

type suite struct {
	name, about string
	run         func(context.Context, *Env) ([]Row, error)
}

var suites = map[string]suite{}

func register(name, about string, run func(context.Context, *Env) ([]Row, error)) {
	suites[name] = suite{name, about, run}
}

func met(ok bool) *bool { return &ok }

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func realMain() error {
	var names []string
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	only := flag.String("only", "", "comma-separated suites to run (of: "+strings.Join(names, ", ")+"); all when empty")
	egret := flag.String("egret", "bin/egret", "the egret binary (make builds it)")
	quick := flag.Bool("quick", false, "small samples: a smoke run, not a measurement")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	compare := flag.Bool("compare", false, "compare egret supervise with supervisord and s6 instead (make bench-compare)")
	results := flag.String("results", "", "with -compare: also write the table, machine, date and versions to this Markdown file")
	flag.Parse()

	sel := names
	if *only != "" {
		sel = nil
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if _, ok := suites[n]; !ok {
				return fmt.Errorf("-only: unknown suite %q (have %s)", n, strings.Join(names, ", "))
			}
			sel = append(sel, n)
		}
	}
	bin, err := filepath.Abs(*egret)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-egret %s: %w (run make first)", *egret, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "egret-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env := &Env{Egret: bin, Tmp: tmp, Self: self, Quick: *quick, Log: os.Stderr}

	if *compare {
		return runCompare(ctx, env, *results)
	}
	var rows []Row
	for _, n := range sel {
		fmt.Fprintf(os.Stderr, "bench: %s (%s)...\n", n, suites[n].about)
		r, err := suites[n].run(ctx, env)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		rows = append(rows, r...)
	}
	printTable(os.Stdout, rows, *markdown)
	return nil
}

func printTable(w io.Writer, rows []Row, markdown bool) {
	verdict := func(r Row) string {
		switch {
		case r.Met == nil:
			return r.Goal
		case *r.Met:
			return r.Goal + " (met)"
		default:
			return r.Goal + " (MISSED)"
		}
	}
	if markdown {
		fmt.Fprintln(w, "| figure | value | floor | goal |")
		fmt.Fprintln(w, "| --- | --- | --- | --- |")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Figure, r.Value, r.Floor, verdict(r))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tfloor\tgoal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Figure, r.Value, r.Floor, verdict(r))
	}
	tw.Flush()
}
