// Package config reads Heron's configuration as Heron's own tools do: a cluster's directory of
// YAML files (`<config-path>/<cluster>/*.yaml`), the older flat `key:value` files given with
// --config-file and a --config-loader, and --config-property overrides, with Heron's token
// substitution (${HOME}, ${CLUSTER}, ${HERON_HOME}, ...). Default configurations for the
// clusters local, localzk and mesos are built into the binary.
//
// Every value remembers where it came from (file and line, a flag, or a built-in default), so
// errors name the file, line and key, and `egret config dump` can show the source of each value.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Keys that egret and Heron's daemons read; the names are Heron's.
const (
	KeyCluster          = "heron.config.cluster"
	KeyRole             = "heron.config.role"
	KeyEnviron          = "heron.config.environ"
	KeyTopologyName     = "heron.topology.name"
	KeyTopologyID       = "heron.topology.id"
	KeyHeronHome        = "heron.directory.home"
	KeyHeronConf        = "heron.directory.conf"
	KeyStateManager     = "heron.class.state.manager"
	KeyStateConnection  = "heron.statemgr.connection.string"
	KeyStateRoot        = "heron.statemgr.root.path"
	KeyZKSessionTimeout = "heron.statemgr.zookeeper.session.timeout.ms"
	KeyZKConnTimeout    = "heron.statemgr.zookeeper.connection.timeout.ms"
	KeyZKInitTree       = "heron.statemgr.zookeeper.is.initialize.tree"
	KeyLocalInitTree    = "heron.statemgr.localfs.is.initialize.file.tree"
	KeySchedulerService = "heron.scheduler.is.service"
)

// Source says where a value came from.
type Source struct {
	// File is a path, "embedded:<cluster>/<file>" for a built-in default file,
	// "--config-property", "option" (a value egret set from its own flags), or "default"
	// (Heron's built-in default for the key).
	File string
	// Line is 1-based; 0 when the source has no lines.
	Line int
}

func (s Source) String() string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return s.File
}

type entry struct {
	scalar string     // the value of a scalar, before substitution
	node   *yaml.Node // lists and maps; nil for scalars
	isBool bool       // the YAML value was a boolean, so override.yaml keeps it one
	src    Source
}

// Config is an effective configuration: the merged files and overrides, with Heron's defaults
// behind them. It is immutable; With returns a changed copy.
type Config struct {
	entries   map[string]entry
	overrides []Property
	files     []confFile // the cluster's files, for WriteConfDir
	getenv    func(string) string
}

// Property is one --config-property.
type Property struct {
	Key, Value string
}

type confFile struct {
	name string // base name, e.g. statemgr.yaml
	data []byte
}

// Options select and adjust a configuration.
type Options struct {
	// ConfigPath holds one directory per cluster (Heron's --config-path, ~/.heron/conf).
	// When empty, ~/.heron/conf/<cluster> is used if it exists, else the built-in default.
	ConfigPath string
	// ConfDir, when set, is read directly as the cluster's directory: inside a container this
	// is ./heron-conf ("cluster mode"); ConfigPath and Cluster's directory lookup are skipped.
	ConfDir string
	// Cluster, Role, Environ and Topology feed ${CLUSTER}, ${ROLE}, ${ENVIRON}, ${TOPOLOGY}.
	Cluster, Role, Environ, Topology string
	// HeronHome is ${HERON_HOME}; default ~/.heron, or ./heron-core in cluster mode.
	HeronHome string
	// Properties are --config-property values, "key=value"; they win over everything.
	Properties []string
	// OverrideFile is an override.yaml to merge after the cluster's files (a container's
	// --override-config-file).
	OverrideFile string
	// ConfigFile is an old flat `key:value` file (--config-file).
	ConfigFile string
	// Loader is --config-loader: a Heron loader class name or a short name (local, localzk,
	// mesos). It selects the built-in defaults the flat file is laid over.
	Loader string
	// Getenv looks up environment variables; nil means os.Getenv.
	Getenv func(string) string
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found, so one run shows them all.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("config: %d problems:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// clusterFiles are merged in this order, later files winning (Heron's client order).
// heron_internals.yaml and metrics_sinks.yaml are shipped, not merged.
var clusterFiles = []string{
	"cluster.yaml", "client.yaml", "healthmgr.yaml", "packing.yaml", "scheduler.yaml",
	"statemgr.yaml", "uploader.yaml", "downloader.yaml", "stateful.yaml", "release.yaml",
}

// shippedFiles are copied into heron-conf/ but not merged.
var shippedFiles = []string{"heron_internals.yaml", "metrics_sinks.yaml"}

// Load builds the effective configuration. Every problem is reported at once in an *Error.
func Load(opts Options) (*Config, error) {
	c := &Config{entries: map[string]entry{}, getenv: opts.Getenv}
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	var probs []Problem

	// The flat file's loader picks the defaults; a loader alone names a cluster.
	loaderCluster := ""
	if opts.Loader != "" {
		lc, err := loaderShortName(opts.Loader)
		if err != nil {
			return nil, &Error{Problems: []Problem{{Key: "--config-loader", Msg: err.Error()}}}
		}
		loaderCluster = lc
	}
	cluster := opts.Cluster
	if cluster == "" {
		cluster = loaderCluster
	}

	clusterMode := opts.ConfDir != ""
	home := opts.HeronHome
	if home == "" {
		if clusterMode {
			home = "./heron-core"
		} else {
			home = filepath.Join(c.userHome(), ".heron")
		}
	}
	c.setOption(KeyHeronHome, home)
	if cluster != "" {
		c.setOption(KeyCluster, cluster)
	}
	if opts.Role != "" {
		c.setOption(KeyRole, opts.Role)
	}
	if opts.Environ != "" {
		c.setOption(KeyEnviron, opts.Environ)
	}
	if opts.Topology != "" {
		c.setOption(KeyTopologyName, opts.Topology)
	}

	// The cluster's files.
	files, confDir, err := c.clusterSource(opts, cluster, loaderCluster)
	if err != nil {
		return nil, &Error{Problems: []Problem{{Msg: err.Error()}}}
	}
	if confDir != "" {
		c.setOption(KeyHeronConf, confDir)
	}
	c.files = files
	byName := map[string][]byte{}
	fileLabel := map[string]string{}
	for _, f := range files {
		byName[f.name] = f.data
	}
	for _, name := range clusterFiles {
		data, ok := byName[name]
		if !ok {
			continue
		}
		label := labelFor(confDir, cluster, name)
		fileLabel[name] = label
		probs = append(probs, c.mergeYAML(label, data)...)
	}
	for _, name := range shippedFiles {
		if data, ok := byName[name]; ok {
			// Parsed only to report syntax errors early.
			var n yaml.Node
			if err := yaml.Unmarshal(data, &n); err != nil {
				probs = append(probs, yamlProblem(labelFor(confDir, cluster, name), err))
			}
		}
	}
	if clusterMode {
		if data, ok := byName["override.yaml"]; ok && opts.OverrideFile == "" {
			probs = append(probs, c.mergeYAML(labelFor(confDir, cluster, "override.yaml"), data)...)
		}
	}

	if opts.ConfigFile != "" {
		data, err := os.ReadFile(opts.ConfigFile)
		if err != nil {
			probs = append(probs, Problem{File: opts.ConfigFile, Msg: fmt.Sprintf("cannot read --config-file: %v", errors.Unwrap(err))})
		} else {
			probs = append(probs, c.mergeFlat(opts.ConfigFile, data)...)
		}
	}
	if opts.OverrideFile != "" {
		data, err := os.ReadFile(opts.OverrideFile)
		if err != nil {
			probs = append(probs, Problem{File: opts.OverrideFile, Msg: fmt.Sprintf("cannot read override file: %v", errors.Unwrap(err))})
		} else {
			probs = append(probs, c.mergeYAML(opts.OverrideFile, data)...)
		}
	}
	for i, p := range opts.Properties {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			probs = append(probs, Problem{File: "--config-property", Line: i + 1, Msg: fmt.Sprintf("%q is not key=value", p)})
			continue
		}
		isBool := strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
		c.entries[k] = entry{scalar: v, isBool: isBool, src: Source{File: "--config-property"}}
		c.overrides = append(c.overrides, Property{Key: k, Value: v})
	}

	probs = append(probs, c.checkTokens()...)
	if len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return c, nil
}

func labelFor(confDir, cluster, name string) string {
	if confDir == "" {
		return "embedded:" + cluster + "/" + name
	}
	return filepath.Join(confDir, name)
}

// clusterSource finds the cluster's files: ConfDir, <ConfigPath>/<cluster>, ~/.heron/conf/<cluster>,
// or the built-in defaults. confDir is "" for built-in files.
func (c *Config) clusterSource(opts Options, cluster, loaderCluster string) ([]confFile, string, error) {
	if opts.ConfDir != "" {
		files, err := readConfDir(opts.ConfDir)
		return files, opts.ConfDir, err
	}
	if opts.Loader != "" && opts.ConfigPath == "" {
		// The old flat format lays its file over the loader's defaults.
		files, err := embeddedFiles(loaderCluster)
		return files, "", err
	}
	if cluster == "" {
		return nil, "", errors.New("no cluster given")
	}
	if opts.ConfigPath != "" {
		dir := filepath.Join(opts.ConfigPath, cluster)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, "", fmt.Errorf("cluster %q: no directory %s (--config-path %s)", cluster, dir, opts.ConfigPath)
		}
		files, err := readConfDir(dir)
		return files, dir, err
	}
	dir := filepath.Join(c.userHome(), ".heron", "conf", cluster)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		files, err := readConfDir(dir)
		return files, dir, err
	}
	files, err := embeddedFiles(cluster)
	if err != nil {
		return nil, "", fmt.Errorf("cluster %q: no directory %s and %w", cluster, dir, err)
	}
	return files, "", nil
}

func readConfDir(dir string) ([]confFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read config directory: %w", err)
	}
	var files []confFile
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		files = append(files, confFile{name: e.Name(), data: data})
	}
	return files, nil
}

func (c *Config) userHome() string {
	if h := c.getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

func (c *Config) setOption(key, value string) {
	c.entries[key] = entry{scalar: value, src: Source{File: "option"}}
}

func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0], "", 1))
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return Problem{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

var yamlLineRE = regexp.MustCompile(`line (\d+):?`)

// mergeYAML lays a Heron YAML file (a map of dotted keys) over the entries.
func (c *Config) mergeYAML(file string, data []byte) []Problem {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []Problem{yamlProblem(file, err)}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file, like mesos/client.yaml
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return []Problem{{File: file, Line: root.Line, Msg: "expected a map of keys to values"}}
	}
	var probs []Problem
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			probs = append(probs, Problem{File: file, Line: k.Line, Msg: "a key must be a non-empty string"})
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			probs = append(probs, Problem{File: file, Line: k.Line, Key: k.Value, Msg: fmt.Sprintf("duplicate key (first on line %d)", prev)})
			continue
		}
		seen[k.Value] = k.Line
		e := entry{src: Source{File: file, Line: k.Line}}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				e.scalar = ""
			} else {
				e.scalar = v.Value
			}
			e.isBool = v.Tag == "!!bool"
			if e.isBool {
				e.scalar = strings.ToLower(v.Value)
			}
		case yaml.AliasNode:
			probs = append(probs, Problem{File: file, Line: v.Line, Key: k.Value, Msg: "YAML aliases are not supported"})
			continue
		default:
			e.node = v
		}
		c.entries[k.Value] = e
	}
	return probs
}

// flatKeyRE is what a key of the old flat format may look like.
var flatKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

// mergeFlat lays an old flat `key:value` (or `key: value`) file over the entries, renaming
// old keys to today's.
func (c *Config) mergeFlat(file string, data []byte) []Problem {
	var probs []Problem
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		k = strings.TrimSpace(k)
		if !ok {
			probs = append(probs, Problem{File: file, Line: n, Msg: fmt.Sprintf("expected key:value, got %q", t)})
			continue
		}
		if !flatKeyRE.MatchString(k) {
			probs = append(probs, Problem{File: file, Line: n, Key: k, Msg: "a key is letters, digits, '.', '_' or '-'"})
			continue
		}
		v = unquote(strings.TrimSpace(v))
		if nk, ok := oldKeys[k]; ok {
			k = nk
		}
		isBool := strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
		if isBool {
			v = strings.ToLower(v)
		}
		c.entries[k] = entry{scalar: v, isBool: isBool, src: Source{File: file, Line: n}}
	}
	return probs
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// checkTokens reports every value that uses a token Heron does not know.
func (c *Config) checkTokens() []Problem {
	var probs []Problem
	for _, k := range c.Keys() {
		e := c.entries[k]
		for _, s := range e.strings() {
			for _, tok := range tokensIn(s) {
				if _, ok := tokenKeys[tok]; !ok && tok != "HOME" && tok != "JAVA_HOME" {
					probs = append(probs, Problem{File: e.src.File, Line: e.src.Line, Key: k,
						Msg: fmt.Sprintf("unknown token ${%s} (known: %s)", tok, strings.Join(knownTokens(), ", "))})
				}
			}
		}
	}
	sort.SliceStable(probs, func(i, j int) bool {
		if probs[i].File != probs[j].File {
			return probs[i].File < probs[j].File
		}
		return probs[i].Line < probs[j].Line
	})
	return probs
}

// strings returns the scalars inside an entry, for token checks.
func (e entry) strings() []string {
	if e.node == nil {
		return []string{e.scalar}
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			out = append(out, n.Value)
		}
		for _, ch := range n.Content {
			walk(ch)
		}
	}
	walk(e.node)
	return out
}

// Keys returns every key set by a file, flag or option, sorted.
func (c *Config) Keys() []string {
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Lookup returns the value of key with tokens substituted, from the files and flags or else
// from Heron's defaults; ok is false when neither has it.
func (c *Config) Lookup(key string) (string, bool) {
	raw, ok := c.raw(key)
	if !ok {
		return "", false
	}
	return c.substitute(raw, 0), true
}

func (c *Config) raw(key string) (string, bool) {
	if e, ok := c.entries[key]; ok {
		if e.node != nil {
			out, err := yaml.Marshal(e.node)
			if err != nil {
				return "", false
			}
			return strings.TrimSpace(string(out)), true
		}
		return e.scalar, true
	}
	d, ok := heronDefaults[key]
	return d, ok
}

// String returns the value of key (see Lookup), or "" when it has none.
func (c *Config) String(key string) string {
	v, _ := c.Lookup(key)
	return v
}

// Int returns the integer value of key, or def when it has none.
func (c *Config) Int(key string, def int64) (int64, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, c.valueError(key, v, "an integer")
	}
	return n, nil
}

// Float returns the numeric value of key, or def when it has none.
func (c *Config) Float(key string, def float64) (float64, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, c.valueError(key, v, "a number")
	}
	return n, nil
}

// Bool returns the boolean value of key (true/false in any case, as Heron's YAML), or def.
func (c *Config) Bool(key string, def bool) (bool, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, c.valueError(key, v, "true or false")
}

// Duration returns the value of key as a duration. Heron keys carry their unit in their
// name (.ms, .sec, .secs, .seconds); other values may be Go durations ("1m30s").
func (c *Config) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c.Lookup(key)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def, nil
	}
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(key, ".ms"):
		unit = time.Millisecond
	case strings.HasSuffix(key, ".sec"), strings.HasSuffix(key, ".secs"), strings.HasSuffix(key, ".seconds"):
		unit = time.Second
	}
	if unit != 0 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, c.valueError(key, v, "an integer")
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, c.valueError(key, v, "a duration")
	}
	return d, nil
}

func (c *Config) valueError(key, v, want string) error {
	src := c.Source(key)
	return &Error{Problems: []Problem{{File: src.File, Line: src.Line, Key: key, Msg: fmt.Sprintf("%q is not %s", v, want)}}}
}

// Map returns a map-valued key (heron.downloader.registry) as strings; nil when absent.
func (c *Config) Map(key string) map[string]string {
	e, ok := c.entries[key]
	if !ok || e.node == nil || e.node.Kind != yaml.MappingNode {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(e.node.Content); i += 2 {
		m[e.node.Content[i].Value] = c.substitute(e.node.Content[i+1].Value, 0)
	}
	return m
}

// Source says where key's value came from.
func (c *Config) Source(key string) Source {
	if e, ok := c.entries[key]; ok {
		return e.src
	}
	if _, ok := heronDefaults[key]; ok {
		return Source{File: "default"}
	}
	return Source{}
}

// With returns a copy of c with key set to value (e.g. a container's flags), attributed to src.
func (c *Config) With(key, value string, src Source) *Config {
	n := c.clone()
	n.entries[key] = entry{scalar: value, src: src}
	return n
}

func (c *Config) clone() *Config {
	n := &Config{entries: make(map[string]entry, len(c.entries)), getenv: c.getenv, files: c.files}
	for k, v := range c.entries {
		n.entries[k] = v
	}
	n.overrides = append([]Property(nil), c.overrides...)
	return n
}

// Overrides returns the --config-property values, in order.
func (c *Config) Overrides() []Property {
	return append([]Property(nil), c.overrides...)
}

// OverrideYAML is the override.yaml handed to containers: the --config-property values, with
// true/false turned into booleans as Heron's CLI does.
func (c *Config) OverrideYAML() []byte {
	var b strings.Builder
	last := map[string]int{}
	for i, p := range c.overrides {
		last[p.Key] = i
	}
	for i, p := range c.overrides {
		if last[p.Key] != i {
			continue
		}
		key, _ := yaml.Marshal(p.Key)
		var val []byte
		switch strings.ToLower(p.Value) {
		case "true", "false":
			val = []byte(strings.ToLower(p.Value) + "\n")
		default:
			val, _ = yaml.Marshal(p.Value)
		}
		fmt.Fprintf(&b, "%s: %s", strings.TrimSpace(string(key)), val)
	}
	return []byte(b.String())
}

// Dump renders the effective configuration, one `key: value  # source` a line, sorted; Heron's
// defaults are included for the keys in Defaults.
func (c *Config) Dump() string {
	keys := c.Keys()
	for k := range heronDefaults {
		if _, ok := c.entries[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := c.String(k)
		if strings.Contains(v, "\n") {
			// A list or map: the source on the key's line, the value indented below.
			fmt.Fprintf(&b, "%s:    # %s%s\n", k, c.Source(k), strings.ReplaceAll("\n"+v, "\n", "\n    "))
			continue
		}
		fmt.Fprintf(&b, "%s: %s    # %s\n", k, v, c.Source(k))
	}
	return b.String()
}

// WriteConfDir writes the cluster's files and override.yaml into dir, which becomes a
// topology package's heron-conf/. Built-in default files are written out as they are.
func (c *Config) WriteConfDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write config directory: %w", err)
	}
	for _, f := range c.files {
		if f.name == "override.yaml" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write config directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "override.yaml"), c.OverrideYAML(), 0o644); err != nil {
		return fmt.Errorf("write config directory: %w", err)
	}
	return nil
}
