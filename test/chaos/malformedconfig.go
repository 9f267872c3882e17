package main

import (
	"context"
	"path/filepath"
	"time"
)

func init() {
	register(scenario{order: 20, name: "malformed-config", timeout: 3 * time.Minute, run: malformedConfig,
		about: "malformed configuration directories, flat files, loaders and properties given to egret: each refused with the file, line and key, no crash, nothing written"})
}

// clusterFiles is a cluster configuration directory whose files are all valid but one.
func clusterFiles(cluster, bad, body string) map[string]string {
	files := map[string]string{}
	for _, f := range []string{"scheduler", "statemgr", "packing", "client", "uploader", "heron_internals", "metrics_sinks", "stateful", "healthmgr", "downloader"} {
		files[filepath.Join("conf", cluster, f+".yaml")] = "# valid and empty\n"
	}
	files[filepath.Join("conf", cluster, bad)] = body
	return files
}

func malformedConfig(ctx context.Context, s *scen) error {
	home := filepath.Join(s.dir, "home")
	env := []string{"HOME=" + home, "EGRET_CACHE_DIR=" + filepath.Join(s.suite.dir, "cache")}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	spec := filepath.Join(root, "examples", "wordcount.yaml")
	// config dump takes its flags before the cluster.
	dump := []string{"config", "dump", "--config-path", "{dir}/conf", "local"}
	cases := []badInput{
		{name: "yaml-syntax", files: clusterFiles("local", "scheduler.yaml",
			"heron.scheduler.local.working.directory: /tmp/x\nheron.class.scheduler: [unclosed\n"),
			args: dump, want: []string{"scheduler.yaml:"}},
		{name: "yaml-not-a-mapping", files: clusterFiles("local", "statemgr.yaml", "- a\n- b\n"),
			args: dump, want: []string{"statemgr.yaml"}},
		{name: "binary-garbage", files: clusterFiles("local", "packing.yaml", garbage),
			args: dump, want: []string{"packing.yaml"}},
		{name: "unknown-token", files: clusterFiles("local", "statemgr.yaml",
			"heron.statemgr.root.path: ${NO_SUCH_TOKEN}/state\n"),
			args: dump, want: []string{"statemgr.yaml", "NO_SUCH_TOKEN"}},
		{name: "two-problems-one-file", files: clusterFiles("local", "scheduler.yaml",
			"a: ${NOPE_ONE}\nb: fine\nc: ${NOPE_TWO}\n"),
			args: dump, want: []string{"NOPE_ONE", "NOPE_TWO"}},
		{name: "flat-file-bad-line", files: map[string]string{"flat.conf": "heron.core.release.uri:http://127.0.0.1:1/core.tar.gz\nthis line has no separator\n"},
			args: []string{"config", "dump", "--config-file", "{dir}/flat.conf", "local"}, want: []string{"flat.conf", "2"}},
		{name: "flat-file-missing", args: []string{"config", "dump", "--config-file", "{dir}/absent.conf", "local"},
			want: []string{"absent.conf"}},
		{name: "unknown-loader", args: []string{"config", "dump", "--config-file", "{dir}/flat.conf", "--config-loader", "org.example.NoSuchLoader", "local"}, files: map[string]string{"flat.conf": "heron.package.core.uri: file:///x\n"},
			want: []string{"NoSuchLoader", "local"}},
		{name: "property-without-value", args: []string{"config", "dump", "--config-property", "heron.no.equals.sign", "local"},
			want: []string{"heron.no.equals.sign"}},
		{name: "unknown-cluster", args: []string{"config", "dump", "no-such-cluster"},
			want: []string{"no-such-cluster"}},
		{name: "submit-with-bad-config", files: clusterFiles("local", "scheduler.yaml", "heron.class.scheduler: [unclosed\n"),
			args:  []string{"submit", "local", spec, "--config-path", "{dir}/conf"},
			want:  []string{"scheduler.yaml"},
			after: func(ctx context.Context, dir string) error { return emptyOrAbsent(filepath.Join(home, ".herondata")) }},
	}
	for _, c := range cases {
		s.refuse(ctx, env, c)
	}
	return nil
}
