package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// Defaults the YAML loader applies (the Go API takes zero values literally).
var (
	FileRestartDefaults = RestartPolicy{Mode: RestartAlways, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second, Jitter: 0.2, StableAfter: 10 * time.Second}
	// FileHealthDefaults are Mesos's defaults.
	FileHealthDefaults = HealthCheck{Delay: 15 * time.Second, Interval: 10 * time.Second, Timeout: 20 * time.Second, ConsecutiveFailures: 3, Grace: 10 * time.Second, Action: HealthRestart}
)

// LoadFile reads an `egret supervise` YAML file (docs/supervisor.md has the
// schema) and returns its processes and its log directory (relative paths
// resolved against the file's directory). A malformed file is refused with
// the file, line and key at fault; unknown keys are errors.
func LoadFile(path string) (specs []Spec, logDir string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	return Load(path, b)
}

// Load parses the YAML in b; name is used in messages and to resolve
// relative paths.
func Load(name string, b []byte) (specs []Spec, logDir string, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	l := loader{file: name, base: filepath.Dir(name)}
	defer func() {
		if r := recover(); r != nil {
			le, ok := r.(loadError)
			if !ok {
				panic(r)
			}
			specs, logDir, err = nil, "", le
		}
	}()
	if len(doc.Content) == 0 {
		l.fail(&doc, "", "empty file: want a mapping with processes")
	}
	root := doc.Content[0]
	seenProcs := false
	l.mapping(root, "", func(key string, v *yaml.Node) {
		switch key {
		case "log_dir":
			logDir = l.path(l.str(v, key))
		case "processes":
			seenProcs = true
			if v.Kind != yaml.SequenceNode {
				l.fail(v, key, "want a list of processes")
			}
			names := map[string]int{}
			for i, pn := range v.Content {
				sp := l.process(pn, fmt.Sprintf("processes[%d]", i))
				if line, dup := names[sp.Name]; dup {
					l.fail(pn, fmt.Sprintf("processes[%d].name", i), fmt.Sprintf("process %q already defined at line %d", sp.Name, line))
				}
				names[sp.Name] = pn.Line
				specs = append(specs, sp)
			}
		default:
			l.unknown(v, key)
		}
	})
	if !seenProcs {
		l.fail(root, "processes", "missing")
	}
	return specs, logDir, nil
}

type loadError struct{ msg string }

func (e loadError) Error() string { return e.msg }

type loader struct{ file, base string }

func (l *loader) fail(n *yaml.Node, key, msg string) {
	if key != "" {
		msg = key + ": " + msg
	}
	panic(loadError{fmt.Sprintf("%s:%d: %s", l.file, n.Line, msg)})
}

func (l *loader) unknown(n *yaml.Node, key string) { l.fail(n, key, "unknown key") }

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// mapping calls fn for each key of a mapping node, with the full key path.
func (l *loader) mapping(n *yaml.Node, prefix string, fn func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		l.fail(n, prefix, "want a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if seen[k] {
			l.fail(n.Content[i], join(prefix, k), "given twice")
		}
		seen[k] = true
		fn(k, n.Content[i+1])
	}
}

func (l *loader) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.fail(n, key, "want a string")
	}
	return n.Value
}

func (l *loader) strs(n *yaml.Node, key string) []string {
	if n.Kind != yaml.SequenceNode {
		l.fail(n, key, "want a list of strings")
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, l.str(c, fmt.Sprintf("%s[%d]", key, i)))
	}
	return out
}

func (l *loader) duration(n *yaml.Node, key string) time.Duration {
	s := l.str(n, key)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.fail(n, key, fmt.Sprintf("bad duration %q (want e.g. 500ms, 5s, 10m)", s))
	}
	return d
}

func (l *loader) int(n *yaml.Node, key string) int {
	s := l.str(n, key)
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		l.fail(n, key, fmt.Sprintf("bad count %q (want a non-negative integer)", s))
	}
	return i
}

func (l *loader) float(n *yaml.Node, key string) float64 {
	s := l.str(n, key)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 {
		l.fail(n, key, fmt.Sprintf("bad fraction %q (want a number within [0, 1])", s))
	}
	return f
}

func (l *loader) bool(n *yaml.Node, key string) bool {
	s := l.str(n, key)
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.fail(n, key, fmt.Sprintf("bad boolean %q", s))
	}
	return b
}

var sizeUnits = map[string]int64{"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1 << 10, "M": 1000 * 1000, "MB": 1000 * 1000, "MIB": 1 << 20, "G": 1000 * 1000 * 1000, "GB": 1000 * 1000 * 1000, "GIB": 1 << 30}

func (l *loader) size(n *yaml.Node, key string) int64 {
	s := strings.TrimSpace(l.str(n, key))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := sizeUnits[unit]
	if err != nil || !ok || f <= 0 {
		l.fail(n, key, fmt.Sprintf("bad size %q (want e.g. 10MiB, 500KB, 1048576)", s))
	}
	return int64(f * float64(mult))
}

func (l *loader) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.base, p)
}

func (l *loader) process(n *yaml.Node, prefix string) Spec {
	sp := Spec{Restart: FileRestartDefaults}
	l.mapping(n, prefix, func(k string, v *yaml.Node) {
		key := join(prefix, k)
		switch k {
		case "name":
			sp.Name = l.str(v, key)
		case "command":
			sp.Argv = l.strs(v, key)
		case "dir":
			sp.Dir = l.path(l.str(v, key))
		case "env":
			sp.Env = map[string]string{}
			l.mapping(v, key, func(ek string, ev *yaml.Node) { sp.Env[ek] = l.str(ev, join(key, ek)) })
		case "restart":
			l.restart(v, key, &sp.Restart)
		case "stop_signal":
			sp.StopSignal = l.signal(v, key)
		case "stop_grace":
			sp.StopGrace = l.duration(v, key)
		case "health":
			h := FileHealthDefaults
			l.health(v, key, &h)
			sp.Health = &h
		case "logs":
			l.logs(v, key, &sp.Logs)
		case "detach":
			sp.Detach = l.bool(v, key)
		default:
			l.unknown(v, key)
		}
	})
	if sp.Name == "" {
		l.fail(n, join(prefix, "name"), "missing")
	}
	if len(sp.Argv) == 0 {
		l.fail(n, join(prefix, "command"), "missing or empty")
	}
	if err := sp.Validate(); err != nil {
		l.fail(n, prefix, err.Error())
	}
	return sp
}

func (l *loader) restart(n *yaml.Node, prefix string, r *RestartPolicy) {
	l.mapping(n, prefix, func(k string, v *yaml.Node) {
		key := join(prefix, k)
		switch k {
		case "policy":
			switch m := RestartMode(l.str(v, key)); m {
			case RestartAlways, RestartOnFailure, RestartNever:
				r.Mode = m
			default:
				l.fail(v, key, fmt.Sprintf("unknown policy %q (want always, on-failure or never)", m))
			}
		case "initial_backoff":
			r.InitialBackoff = l.duration(v, key)
		case "max_backoff":
			r.MaxBackoff = l.duration(v, key)
		case "jitter":
			r.Jitter = l.float(v, key)
		case "stable_after":
			r.StableAfter = l.duration(v, key)
		case "budget":
			l.mapping(v, key, func(bk string, bv *yaml.Node) {
				switch bk {
				case "restarts":
					r.Budget.Restarts = l.int(bv, join(key, bk))
				case "window":
					r.Budget.Window = l.duration(bv, join(key, bk))
				default:
					l.unknown(bv, join(key, bk))
				}
			})
			if r.Budget.Restarts > 0 && r.Budget.Window <= 0 {
				l.fail(v, join(key, "window"), "missing (a budget needs a window)")
			}
		default:
			l.unknown(v, key)
		}
	})
}

func (l *loader) health(n *yaml.Node, prefix string, h *HealthCheck) {
	kinds := 0
	l.mapping(n, prefix, func(k string, v *yaml.Node) {
		key := join(prefix, k)
		switch k {
		case "exec":
			h.Exec = l.strs(v, key)
			if len(h.Exec) == 0 {
				l.fail(v, key, "empty command")
			}
			kinds++
		case "tcp":
			h.TCP = l.str(v, key)
			if _, _, err := netSplit(h.TCP); err != nil {
				l.fail(v, key, fmt.Sprintf("bad address %q (want host:port)", h.TCP))
			}
			kinds++
		case "http":
			h.HTTP = l.str(v, key)
			if !strings.HasPrefix(h.HTTP, "http://") && !strings.HasPrefix(h.HTTP, "https://") {
				l.fail(v, key, fmt.Sprintf("bad URL %q (want http:// or https://)", h.HTTP))
			}
			kinds++
		case "delay":
			h.Delay = l.duration(v, key)
		case "interval":
			h.Interval = l.duration(v, key)
		case "timeout":
			h.Timeout = l.duration(v, key)
		case "consecutive_failures":
			h.ConsecutiveFailures = l.int(v, key)
		case "grace":
			h.Grace = l.duration(v, key)
		case "action":
			switch a := HealthAction(l.str(v, key)); a {
			case HealthRestart, HealthReport:
				h.Action = a
			default:
				l.fail(v, key, fmt.Sprintf("unknown action %q (want restart or report)", a))
			}
		default:
			l.unknown(v, key)
		}
	})
	if kinds != 1 {
		l.fail(n, prefix, "want exactly one of exec, tcp, http")
	}
}

func (l *loader) logs(n *yaml.Node, prefix string, lp *LogPolicy) {
	l.mapping(n, prefix, func(k string, v *yaml.Node) {
		key := join(prefix, k)
		switch k {
		case "dir":
			lp.Dir = l.path(l.str(v, key))
		case "stdout":
			lp.Stdout = l.path(l.str(v, key))
		case "stderr":
			lp.Stderr = l.path(l.str(v, key))
		case "max_size":
			lp.MaxSize = l.size(v, key)
		case "max_files":
			lp.MaxFiles = l.int(v, key)
			if lp.MaxFiles == 0 {
				l.fail(v, key, "must be at least 1")
			}
		default:
			l.unknown(v, key)
		}
	})
}

func (l *loader) signal(n *yaml.Node, key string) syscall.Signal {
	s := strings.ToUpper(l.str(n, key))
	if i, err := strconv.Atoi(s); err == nil && i > 0 && i < 65 {
		return syscall.Signal(i)
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig
	}
	l.fail(n, key, fmt.Sprintf("unknown signal %q (want e.g. TERM, INT, HUP)", n.Value))
	return 0
}

func netSplit(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || i == len(addr)-1 {
		return "", "", errors.New("no port")
	}
	if _, err := strconv.ParseUint(addr[i+1:], 10, 16); err != nil {
		return "", "", err
	}
	return addr[:i], addr[i+1:], nil
}
