package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSubstitutionGolden(t *testing.T) {
	cfg, err := Load(Options{Cluster: "local", Role: "ann", Environ: "prod", Topology: "wordcount",
		HeronHome: "/opt/heron", Getenv: env(map[string]string{"HOME": "/home/ann", "JAVA_HOME": "/usr/lib/jvm/java-17"})})
	if err != nil {
		t.Fatal(err)
	}
	golden := map[string]string{
		"heron.statemgr.root.path":                     "/home/ann/.herondata/repository/state/local",
		"heron.scheduler.local.working.directory":      "/home/ann/.herondata/topologies/local/ann/wordcount",
		"heron.uploader.localfs.file.system.directory": "/home/ann/.herondata/repository/topologies/local/ann/wordcount",
		"heron.directory.sandbox.java.home":            "/usr/lib/jvm/java-17",
		"heron.package.core.directory":                 "/opt/heron/dist/heron-core",
		"heron.binaries.executor":                      "/opt/heron/bin/heron-executor",
		"heron.classpath.instance":                     "/opt/heron/lib/instance/*",
		"heron.config.file.statemgr.yaml":              "/opt/heron/conf/statemgr.yaml",
		"heron.statemgr.connection.string":             "LOCALMODE",
		"heron.config.cluster":                         "local",
		"heron.config.environ":                         "prod",
	}
	for k, want := range golden {
		if got := cfg.String(k); got != want {
			t.Errorf("String(%q) = %q, want %q", k, got, want)
		}
	}
	if got := cfg.Map("heron.statefulstorage.config")["heron.statefulstorage.localfs.root.path"]; got != "/home/ann/.herondata/checkpoints" {
		t.Errorf("~ in a map value = %q", got)
	}
	if got := cfg.Map("heron.downloader.registry")["https"]; got != "org.apache.heron.downloader.HttpDownloader" {
		t.Errorf("downloader registry https = %q", got)
	}

	// A URL: only the part after scheme:// is substituted.
	m, err := Load(Options{Cluster: "mesos", Getenv: env(map[string]string{"HOME": "/home/ann"})})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String("heron.package.core.uri"), "file:///home/ann/.heron/dist/heron-core.tar.gz"; got != want {
		t.Errorf("mesos core uri = %q, want %q", got, want)
	}
	// Tokens whose value is not known yet stay as they are.
	if got, want := m.String("heron.scheduler.mesos.scheduler.working.directory"), "/home/ann/.herondata/topologies/mesos/${ROLE}/${TOPOLOGY}"; got != want {
		t.Errorf("unresolved tokens = %q, want %q", got, want)
	}
	if got := m.String("heron.directory.sandbox.java.home"); got != "${JAVA_HOME}" {
		t.Errorf("unset JAVA_HOME = %q, want it left as ${JAVA_HOME}", got)
	}
	if got := m.String(KeyStateConnection); got != "127.0.0.1:2181" {
		t.Errorf("mesos state connection = %q, want ZooKeeper on 127.0.0.1:2181", got)
	}
	if got := m.String(KeyStateRoot); got != "/heron" {
		t.Errorf("mesos state root = %q", got)
	}
}

func TestSubstitutionRules(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, "c"), map[string]string{"client.yaml": strings.Join([]string{
		"a.whole: ${CLUSTER}/x",
		"a.embedded: pre-${CLUSTER}/x", // not a whole component: Heron leaves it
		"a.tilde: ~/x",
		"a.tilde.inner: /a/~/b",
		"a.url: hdfs://nn/${ROLE}/x",
		"a.topology.alias: ${TOPOLOGY_NAME}",
		"a.conf: ${HERON_CONF}/f.yaml",
	}, "\n")})
	cfg, err := Load(Options{ConfigPath: dir, Cluster: "c", Role: "r", Topology: "t", HeronHome: "/h",
		Getenv: env(map[string]string{"HOME": "/home/u"})})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"a.whole":          "c/x",
		"a.embedded":       "pre-${CLUSTER}/x",
		"a.tilde":          "/home/u/x",
		"a.tilde.inner":    "/a/home/u/b",
		"a.url":            "hdfs://nn/r/x",
		"a.topology.alias": "t",
		"a.conf":           filepath.Join(dir, "c") + "/f.yaml",
	} {
		if got := cfg.String(k); got != want {
			t.Errorf("String(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"scheduler.yaml": "k.both: from-scheduler\nk.sched: s\n",
		"statemgr.yaml":  "k.both: from-statemgr\nk.state: a\nk.over: statemgr\n",
		"override.yaml":  "k.over: override\nk.prop: override\n",
	})
	cfg, err := Load(Options{ConfDir: dir, Properties: []string{"k.prop=property", "k.new=1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, value, source string }{
		{"k.both", "from-statemgr", filepath.Join(dir, "statemgr.yaml") + ":1"}, // later file wins
		{"k.sched", "s", filepath.Join(dir, "scheduler.yaml") + ":2"},
		{"k.over", "override", filepath.Join(dir, "override.yaml") + ":1"},
		{"k.prop", "property", "--config-property"},
		{"k.new", "1", "--config-property"},
		{KeyHeronHome, "./heron-core", "option"}, // cluster mode
		{"heron.binaries.stmgr", "./heron-core/bin/heron-stmgr", "default"},
	} {
		if got := cfg.String(c.key); got != c.value {
			t.Errorf("String(%q) = %q, want %q", c.key, got, c.value)
		}
		if got := cfg.Source(c.key).String(); got != c.source {
			t.Errorf("Source(%q) = %q, want %q", c.key, got, c.source)
		}
	}
	// Properties win over an override file given explicitly, too.
	of := filepath.Join(t.TempDir(), "override.yaml")
	os.WriteFile(of, []byte("k.prop: file\n"), 0o644)
	cfg, err = Load(Options{ConfDir: dir, OverrideFile: of, Properties: []string{"k.prop=flag"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.String("k.prop"); got != "flag" {
		t.Errorf("property vs override file: %q, want flag", got)
	}
	if got := cfg.String("k.over"); got != "statemgr" {
		t.Errorf("with an explicit override file, the directory's override.yaml is not read: %q", got)
	}
	// With sets a value with its own source.
	w := cfg.With(KeyStateConnection, "zk:2181", Source{File: "--state-manager-connection"})
	if w.String(KeyStateConnection) != "zk:2181" || cfg.String(KeyStateConnection) == "zk:2181" {
		t.Error("With changed the original or did not set the copy")
	}
}

func TestFlatFileAndLoader(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mesos_scheduler.conf")
	os.WriteFile(f, []byte(strings.Join([]string{
		"# Heron's 2016 flat format",
		"heron.core.release.uri:http://s3.amazonaws.com/my-heron-binaries",
		"zk.connection.string: master:2181",
		"state.root.address: /storm/heron/cluster",
		"instance.ram.default: 134217728",
		"heron.verbose: True",
		"",
		"custom.key: 'quoted value'",
	}, "\n")), 0o644)
	for _, loader := range []string{"mesos", "org.apache.heron.scheduler.mesos.MesosConfigLoader", "com.twitter.heron.scheduler.mesos.MesosConfigLoader"} {
		cfg, err := Load(Options{ConfigFile: f, Loader: loader, Getenv: env(map[string]string{"HOME": "/h"})})
		if err != nil {
			t.Fatalf("loader %s: %v", loader, err)
		}
		for k, want := range map[string]string{
			"heron.package.core.uri":       "http://s3.amazonaws.com/my-heron-binaries",
			KeyStateConnection:             "master:2181",
			KeyStateRoot:                   "/storm/heron/cluster",
			"heron.resources.instance.ram": "134217728",
			"heron.config.verbose":         "true",
			"custom.key":                   "quoted value",
			"heron.class.scheduler":        "org.apache.heron.scheduler.mesos.MesosScheduler",
			KeyCluster:                     "mesos",
		} {
			if got := cfg.String(k); got != want {
				t.Errorf("loader %s: String(%q) = %q, want %q", loader, k, got, want)
			}
		}
		if got := cfg.Source("heron.package.core.uri").String(); got != f+":2" {
			t.Errorf("source of the renamed key = %q, want %s:2", got, f)
		}
	}
	cfg, err := Load(Options{Loader: "org.apache.heron.scheduler.local.LocalConfigLoader"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.String("heron.class.scheduler"); got != "org.apache.heron.scheduler.local.LocalScheduler" {
		t.Errorf("local loader scheduler = %q", got)
	}
}

func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	flat := filepath.Join(dir, "flat.conf")
	os.WriteFile(flat, []byte("good.key: 1\nno colon here\nbad key!: 2\n"), 0o644)
	cases := []struct {
		name  string
		files map[string]string
		opts  Options
		want  []string
	}{
		{name: "unknown loader", opts: Options{Loader: "org.example.MyLoader"},
			want: []string{`--config-loader: unknown config loader "org.example.MyLoader" (known: com.twitter.heron.scheduler.local.LocalConfigLoader`, "localzk", "mesos"}},
		{name: "yaml syntax", files: map[string]string{"statemgr.yaml": "a: 1\nb: [1, 2\n"},
			want: []string{"statemgr.yaml:", "invalid YAML"}},
		{name: "duplicate key", files: map[string]string{"statemgr.yaml": "a.b: 1\nc: 2\na.b: 3\n"},
			want: []string{"statemgr.yaml:3: a.b: duplicate key (first on line 1)"}},
		{name: "unknown token", files: map[string]string{"scheduler.yaml": "x.dir: ${NOPE}/y\n"},
			want: []string{"scheduler.yaml:1: x.dir: unknown token ${NOPE} (known: HOME, JAVA_HOME"}},
		{name: "not a map", files: map[string]string{"client.yaml": "- a\n- b\n"},
			want: []string{"client.yaml:1: expected a map of keys to values"}},
		{name: "every problem at once", files: map[string]string{
			"scheduler.yaml": "a: ${ONE}\nb: ${TWO}\n", "statemgr.yaml": "x: 1\nx: 2\n"},
			want: []string{"3 problems", "scheduler.yaml:1: a: unknown token ${ONE}", "scheduler.yaml:2: b: unknown token ${TWO}", "statemgr.yaml:2: x: duplicate key"}},
		{name: "flat file", opts: Options{ConfigFile: flat},
			want: []string{flat + `:2: expected key:value, got "no colon here"`, flat + ":3: bad key!: a key is letters"}},
		{name: "missing flat file", opts: Options{ConfigFile: filepath.Join(dir, "absent.conf")},
			want: []string{"absent.conf: cannot read --config-file"}},
		{name: "property", opts: Options{Properties: []string{"ok=1", "novalue"}},
			want: []string{`--config-property:2: "novalue" is not key=value`}},
		{name: "no cluster directory", opts: Options{ConfigPath: dir, Cluster: "nope"},
			want: []string{`cluster "nope": no directory ` + filepath.Join(dir, "nope")}},
		{name: "no built-in cluster", opts: Options{Cluster: "aurora", Getenv: env(map[string]string{"HOME": dir})},
			want: []string{`no built-in configuration for cluster "aurora" (built in: local, localzk, mesos)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			if c.files != nil {
				cd := filepath.Join(t.TempDir(), "conf")
				writeFiles(t, cd, c.files)
				opts.ConfDir = cd
			} else if opts.ConfigFile != "" || len(opts.Properties) > 0 {
				opts.Cluster = "local"
			}
			_, err := Load(opts)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestTypedGetters(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"statemgr.yaml": strings.Join([]string{
		"heron.statemgr.zookeeper.session.timeout.ms: 1500",
		"heron.x.interval.sec: 3",
		"heron.x.ratio: 0.5",
		"heron.x.flag: True",
		"heron.x.bad: many",
		"heron.x.go: 1m30s",
	}, "\n")})
	cfg, err := Load(Options{ConfDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := cfg.Duration(KeyZKSessionTimeout, 0); err != nil || d != 1500*time.Millisecond {
		t.Errorf("Duration(.ms) = %v, %v", d, err)
	}
	if d, err := cfg.Duration("heron.x.interval.sec", 0); err != nil || d != 3*time.Second {
		t.Errorf("Duration(.sec) = %v, %v", d, err)
	}
	if d, err := cfg.Duration("heron.x.go", 0); err != nil || d != 90*time.Second {
		t.Errorf("Duration(go) = %v, %v", d, err)
	}
	if d, err := cfg.Duration("heron.x.absent", time.Hour); err != nil || d != time.Hour {
		t.Errorf("Duration(absent) = %v, %v", d, err)
	}
	if f, err := cfg.Float("heron.x.ratio", 0); err != nil || f != 0.5 {
		t.Errorf("Float = %v, %v", f, err)
	}
	if b, err := cfg.Bool("heron.x.flag", false); err != nil || !b {
		t.Errorf("Bool(True) = %v, %v", b, err)
	}
	_, err = cfg.Int("heron.x.bad", 0)
	if want := filepath.Join(dir, "statemgr.yaml") + `:5: heron.x.bad: "many" is not an integer`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Int(bad) = %v, want %s", err, want)
	}
}

func TestOverrideYAMLAndConfDir(t *testing.T) {
	cfg, err := Load(Options{Cluster: "local", Properties: []string{"a.flag=TRUE", "b.num=1", "c.text=x: y", "a.flag=False"}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(cfg.OverrideYAML())
	want := "b.num: \"1\"\nc.text: 'x: y'\na.flag: false\n"
	if got != want {
		t.Errorf("OverrideYAML =\n%s\nwant\n%s", got, want)
	}
	out := filepath.Join(t.TempDir(), "heron-conf")
	if err := cfg.WriteConfDir(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"statemgr.yaml", "scheduler.yaml", "metrics_sinks.yaml", "override.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("heron-conf/%s: %v", f, err)
		}
	}
	// The written directory loads back in cluster mode with the same values.
	back, err := Load(Options{ConfDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if back.String("a.flag") != "false" || back.String("heron.class.scheduler") != cfg.String("heron.class.scheduler") {
		t.Errorf("reloaded heron-conf differs: a.flag=%q", back.String("a.flag"))
	}
}

func TestDumpNamesSources(t *testing.T) {
	cfg, err := Load(Options{Cluster: "localzk", Properties: []string{"heron.statemgr.root.path=/mine"}, Getenv: env(map[string]string{"HOME": "/h"})})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Dump()
	for _, want := range []string{
		"heron.statemgr.root.path: /mine    # --config-property\n",
		"heron.statemgr.connection.string: 127.0.0.1:2181    # embedded:localzk/statemgr.yaml:3\n",
		"heron.binaries.executor: /h/.heron/bin/heron-executor    # default\n",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dump lacks %q", want)
		}
	}
}
