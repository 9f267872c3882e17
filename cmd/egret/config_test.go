package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"egret/heron/topology"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"egret"}, args...))
	return out.String(), err
}

func TestConfigDump(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	out, err := runApp(t, "config", "dump", "--config-property", "heron.statemgr.root.path=/x", "localzk/ann/prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"heron.statemgr.root.path: /x    # --config-property\n",
		"heron.config.role: ann    # option\n",
		"heron.statemgr.connection.string: 127.0.0.1:2181    # embedded:localzk/statemgr.yaml:3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	if _, err := runApp(t, "config", "dump", "--config-loader", "nope", "x"); err == nil || !strings.Contains(err.Error(), `unknown config loader "nope"`) {
		t.Errorf("bad loader: %v", err)
	}
}

func TestTopologyBuild(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("name: tiny\nspouts:\n  - name: s\n    parallelism: 2\n"), 0o644)
	out := filepath.Join(dir, "out")
	if _, err := runApp(t, "topology", "build", "-o", out, spec); err != nil {
		t.Fatal(err)
	}
	pkg, err := topology.ReadPackage(filepath.Join(out, "topology.tar.gz"))
	if err != nil || pkg.Topology.GetName() != "tiny" || len(pkg.ConfFiles) == 0 {
		t.Fatalf("package %+v, %v", pkg, err)
	}
	if _, err := os.Stat(filepath.Join(out, "tiny.defn")); err != nil {
		t.Error(err)
	}
	os.WriteFile(spec, []byte("name: tiny\nspouts:\n  - name: s\n    parallelism: none\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	_, err = runApp(t, "topology", "build", "-o", empty, spec)
	if err == nil || !strings.Contains(err.Error(), `spec.yaml:4: spouts[0].parallelism: "none" is not a positive integer`) {
		t.Errorf("bad spec: %v", err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("a refused build created %s", empty)
	}
}
