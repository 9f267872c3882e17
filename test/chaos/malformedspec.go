package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
)

func init() {
	register(scenario{order: 30, name: "malformed-spec", timeout: 4 * time.Minute, run: malformedSpec,
		about: "malformed topology specs and packages given to egret topology build and egret submit: each refused naming the file and the field, no crash, no state, no process, no half-written package"})
}

// specMutation changes one thing in the example spec, decoded generically.
type specMutation struct {
	name   string
	mutate func(m map[string]any)
	want   []string
}

func components(m map[string]any, kind string) []any {
	l, _ := m[kind].([]any)
	return l
}

func firstOf(m map[string]any, kind string) map[string]any {
	if l := components(m, kind); len(l) > 0 {
		c, _ := l[0].(map[string]any)
		return c
	}
	return map[string]any{}
}

func specMutations() []specMutation {
	return []specMutation{
		{"no-name", func(m map[string]any) { delete(m, "name") }, []string{"name"}},
		{"bad-name", func(m map[string]any) { m["name"] = "word count/../x" }, []string{"name"}},
		{"zero-parallelism", func(m map[string]any) { firstOf(m, "spouts")["parallelism"] = 0 }, []string{"parallelism"}},
		{"negative-parallelism", func(m map[string]any) { firstOf(m, "bolts")["parallelism"] = -3 }, []string{"parallelism"}},
		{"text-parallelism", func(m map[string]any) { firstOf(m, "bolts")["parallelism"] = "many" }, []string{"parallelism"}},
		{"duplicate-component", func(m map[string]any) { firstOf(m, "bolts")["name"] = firstOf(m, "spouts")["name"] }, []string{"duplicate"}},
		{"unknown-input", func(m map[string]any) {
			if in, ok := firstOf(m, "bolts")["inputs"].([]any); ok && len(in) > 0 {
				in[0].(map[string]any)["component"] = "nosuchcomponent"
			}
		}, []string{"nosuchcomponent"}},
		{"unknown-field", func(m map[string]any) { m["boltz"] = []any{} }, []string{"boltz"}},
		{"no-spouts", func(m map[string]any) { delete(m, "spouts") }, []string{"spout"}},
		{"bad-stmgrs", func(m map[string]any) {
			if c, ok := m["config"].(map[string]any); ok {
				c["topology.stmgrs"] = "three"
			}
		}, []string{"topology.stmgrs"}},
	}
}

// tarGz builds a small tar.gz holding the given files.
func tarGz(files map[string]string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

func malformedSpec(ctx context.Context, s *scen) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	example, err := os.ReadFile(filepath.Join(root, "examples", "wordcount.yaml"))
	if err != nil {
		return fmt.Errorf("the word count example: %w", err)
	}
	home := filepath.Join(s.dir, "home")
	env := []string{"HOME=" + home, "EGRET_CACHE_DIR=" + filepath.Join(s.suite.dir, "cache")}
	noState := func(ctx context.Context, dir string) error { return emptyOrAbsent(filepath.Join(home, ".herondata")) }
	// A refused build leaves the case directory holding only its spec.
	onlySpec := func(ctx context.Context, dir string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Name() != "spec.yaml" && e.Name() != "topology.tar.gz" {
				return fmt.Errorf("%s was left in %s", e.Name(), dir)
			}
		}
		return noState(ctx, dir)
	}

	var cases []badInput
	add := func(name, spec string, want ...string) {
		cases = append(cases,
			badInput{name: "build-" + name, files: map[string]string{"spec.yaml": spec},
				args: []string{"topology", "build", "{dir}/spec.yaml"}, want: append([]string{"spec.yaml"}, want...), after: onlySpec},
			badInput{name: "submit-" + name, files: map[string]string{"spec.yaml": spec},
				args: []string{"submit", "local", "{dir}/spec.yaml"}, want: append([]string{"spec.yaml"}, want...), after: noState})
	}
	add("yaml-syntax", "name: x\nspouts: [unclosed\n", "line")
	add("empty", "")
	add("binary-garbage", garbage)
	add("a-list", "- name: x\n")
	for _, mu := range specMutations() {
		var m map[string]any
		if err := yaml.Unmarshal(example, &m); err != nil {
			return fmt.Errorf("examples/wordcount.yaml: %v", err)
		}
		mu.mutate(m)
		b, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		add(mu.name, string(b), mu.want...)
	}
	// Packages: submit accepts a topology.tar.gz as Heron's CLI builds it.
	for _, p := range []struct {
		name string
		body []byte
	}{
		{"package-garbage", []byte(garbage)},
		{"package-truncated", tarGz(map[string]string{"wordcount.defn": "x", "heron-conf/x": "y"})[:40]},
		{"package-without-defn", tarGz(map[string]string{"README": "no topology definition here\n"})},
		{"package-bad-defn", tarGz(map[string]string{"wordcount.defn": garbage})},
	} {
		cases = append(cases, badInput{name: p.name, files: map[string]string{"topology.tar.gz": string(p.body)},
			args: []string{"submit", "local", "{dir}/topology.tar.gz"}, want: []string{"topology.tar.gz"}, after: noState})
	}
	for _, c := range cases {
		s.refuse(ctx, env, c)
	}
	return nil
}
