package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// strictFlags parses args that must carry exactly the named flags (Go flag
// syntax: -name=value, --name=value or -name value). Unknown, missing and
// repeated flags are errors naming them.
func strictFlags(prog string, args []string, names ...string) (map[string]string, error) {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, n := range names {
		vals[n] = fs.String(n, "", "")
	}
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	var missing []string
	for _, n := range names {
		if !seen[n] {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, usagef("missing flag %s", strings.Join(missing, ", "))
	}
	out := map[string]string{}
	for n, v := range vals {
		out[n] = *v
	}
	return out, nil
}

// portOf reads a port flag.
func portOf(m map[string]string, name string) (int, error) {
	n, err := strconv.Atoi(m[name])
	if err != nil || n <= 0 || n > 65535 {
		return 0, usagef("flag --%s: not a port: %q", name, m[name])
	}
	return n, nil
}

// shortFlags parses the checkpoint manager's short options with attached
// values (-tNAME -iID ...), each required exactly once.
func shortFlags(args []string, letters string) (map[byte]string, error) {
	out := map[byte]string{}
	for _, a := range args {
		if len(a) < 2 || a[0] != '-' || !strings.ContainsRune(letters, rune(a[1])) {
			return nil, usagef("unknown option %q", a)
		}
		if _, dup := out[a[1]]; dup {
			return nil, usagef("option -%c given twice", a[1])
		}
		out[a[1]] = a[2:]
	}
	for i := 0; i < len(letters); i++ {
		if _, ok := out[letters[i]]; !ok {
			return nil, usagef("missing option -%c", letters[i])
		}
	}
	return out, nil
}

func fmtErr(prog string, err error) error { return fmt.Errorf("%s: %w", prog, err) }
