package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestParseClusterRoleEnv(t *testing.T) {
	tests := []struct {
		in                 string
		cluster, role, env string
		err                string
	}{
		{"local", "local", "me", "default", ""},
		{"local/ann", "local", "ann", "default", ""},
		{"local/ann/prod", "local", "ann", "prod", ""},
		{"local//prod", "local", "me", "prod", ""},
		{"", "", "", "", "cluster is empty"},
		{"/ann", "", "", "", "cluster is empty"},
		{"a/b/c/d", "", "", "", "4 parts"},
		{"local/a b", "", "", "", `role "a b"`},
	}
	for _, tt := range tests {
		c, r, e, err := parseClusterRoleEnv(tt.in, "me")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseClusterRoleEnv(%q) error = %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || c != tt.cluster || r != tt.role || e != tt.env {
			t.Errorf("parseClusterRoleEnv(%q) = %q, %q, %q, %v; want %q, %q, %q", tt.in, c, r, e, err, tt.cluster, tt.role, tt.env)
		}
	}
}

func TestReorderArgs(t *testing.T) {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config-path"},
		&cli.GenericFlag{Name: "config-property", Value: &repeated{}},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}},
		&cli.BoolFlag{Name: "dry-run"},
	}
	tests := []struct{ in, want []string }{
		{[]string{"local", "wc", "--verbose"}, []string{"--verbose", "local", "wc"}},
		{[]string{"local", "--config-property", "a=b,c", "wc"}, []string{"--config-property", "a=b,c", "local", "wc"}},
		{[]string{"local", "wc", "--config-path=/x", "-v", "3"}, []string{"--config-path=/x", "-v", "local", "wc", "3"}},
		{[]string{"local", "wc", "-1"}, []string{"local", "wc", "-1"}},
		{[]string{"local", "--", "--verbose"}, []string{"local", "--", "--verbose"}},
		{[]string{"--dry-run", "local", "pkg"}, []string{"--dry-run", "local", "pkg"}},
	}
	for _, tt := range tests {
		if got := reorderArgs(tt.in, flags); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := reorderTopologyArgs([]string{"egret", "kill", "local", "wc", "--verbose"}); !reflect.DeepEqual(got, []string{"egret", "kill", "--verbose", "local", "wc"}) {
		t.Errorf("reorderTopologyArgs(kill ...) = %q", got)
	}
	if got := reorderTopologyArgs([]string{"egret", "other", "x", "--y"}); !reflect.DeepEqual(got, []string{"egret", "other", "x", "--y"}) {
		t.Errorf("reorderTopologyArgs(other ...) changed the arguments: %q", got)
	}
}

func TestParseUpdate(t *testing.T) {
	tests := []struct {
		par  []string
		n    string
		rc   []string
		want map[string]int
		wn   int
		err  string
	}{
		{[]string{"word:3", "count:2"}, "", nil, map[string]int{"word": 3, "count": 2}, 0, ""},
		{nil, "4", nil, map[string]int{}, 4, ""},
		{nil, "", []string{"count:k:v"}, map[string]int{}, 0, ""},
		{nil, "", nil, nil, 0, "give --component-parallelism"},
		{[]string{"word"}, "", nil, nil, 0, `--component-parallelism "word"`},
		{[]string{"word:0"}, "", nil, nil, 0, "at least 1"},
		{[]string{"word:1", "word:2"}, "", nil, nil, 0, "given twice"},
		{nil, "x", nil, nil, 0, `--container-number "x"`},
		{[]string{"word:1"}, "", []string{"a:b"}, nil, 0, "cannot be combined"},
		{nil, "", []string{"novalue"}, nil, 0, `--runtime-config "novalue"`},
	}
	for _, tt := range tests {
		got, n, err := parseUpdate(tt.par, tt.n, tt.rc)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseUpdate(%q, %q, %q) error = %v, want %q", tt.par, tt.n, tt.rc, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) || n != tt.wn {
			t.Errorf("parseUpdate(%q, %q, %q) = %v, %d, %v; want %v, %d", tt.par, tt.n, tt.rc, got, n, err, tt.want, tt.wn)
		}
	}
}

// recordingClient records what the commands asked of it.
type recordingClient struct {
	calls []string
	t     target
}

func (r *recordingClient) rec(s string) error { r.calls = append(r.calls, s); return nil }
func (r *recordingClient) Submit(_ context.Context, pkg string, dd bool) error {
	return r.rec("submit " + pkg + " " + map[bool]string{true: "deactivated", false: "active"}[dd])
}
func (r *recordingClient) Activate(_ context.Context, t string) error { return r.rec("activate " + t) }
func (r *recordingClient) Deactivate(_ context.Context, t string) error {
	return r.rec("deactivate " + t)
}
func (r *recordingClient) Restart(_ context.Context, t string, c int) error {
	return r.rec("restart " + t + " " + strconv.Itoa(c))
}
func (r *recordingClient) Kill(_ context.Context, t string) error { return r.rec("kill " + t) }
func (r *recordingClient) Update(_ context.Context, t string, p map[string]int, n int, rc []string) error {
	return r.rec("update " + t + " " + itoa(len(p)) + " " + itoa(n) + " " + strings.Join(rc, ";"))
}
func (r *recordingClient) Status(_ context.Context, t string, j bool) error {
	return r.rec("status " + t)
}
func (r *recordingClient) List(context.Context) ([]string, error) {
	return []string{"a", "b"}, r.rec("list")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCommandsReachTheClient(t *testing.T) {
	rc := &recordingClient{}
	old := clusterClients
	clusterClients = map[string]clientFactory{"test": func(_ context.Context, t target) (clusterClient, error) { rc.t = t; return rc, nil }}
	defer func() { clusterClients = old }()

	pkg := t.TempDir()
	run := func(args ...string) error {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		return app.Run(reorderTopologyArgs(append([]string{"egret"}, args...)))
	}
	ok := []struct {
		args []string
		call string
	}{
		{[]string{"submit", "test/ann/prod", pkg, "--deploy-deactivated", "--config-property", "heron.statemgr.connection.string=a:1,b:2"}, "submit " + pkg + " deactivated"},
		{[]string{"activate", "test", "wc"}, "activate wc"},
		{[]string{"deactivate", "--verbose", "test", "wc"}, "deactivate wc"},
		{[]string{"restart", "test", "wc", "2"}, "restart wc 2"},
		{[]string{"kill", "test", "wc"}, "kill wc"},
		{[]string{"update", "test", "wc", "--component-parallelism", "word:3", "--container-number", "4"}, "update wc 1 4 "},
		{[]string{"status", "test", "wc", "--json"}, "status wc"},
	}
	for _, tt := range ok {
		rc.calls = nil
		if err := run(tt.args...); err != nil {
			t.Errorf("egret %q: %v", tt.args, err)
			continue
		}
		if len(rc.calls) != 1 || rc.calls[0] != tt.call {
			t.Errorf("egret %q called %q, want %q", tt.args, rc.calls, tt.call)
		}
	}
	run("submit", "test/ann/prod", pkg, "--config-property", "k=a,b", "--config-property", "x=y")
	if rc.t.Role != "ann" || rc.t.Environment != "prod" || !reflect.DeepEqual(rc.t.ConfigProperties, []string{"k=a,b", "x=y"}) {
		t.Errorf("target = %+v, want role ann, env prod and unsplit properties", rc.t)
	}

	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"kill", "test"}, "want CLUSTER[/ROLE[/ENV]] TOPOLOGY"},
		{[]string{"kill", "nowhere", "wc"}, `unknown cluster "nowhere"`},
		{[]string{"submit", "test", "/does/not/exist.tar.gz"}, "/does/not/exist.tar.gz"},
		{[]string{"restart", "test", "wc", "x"}, `container "x"`},
		{[]string{"update", "test", "wc"}, "give --component-parallelism"},
		{[]string{"submit", "test", pkg, "--dry-run", "--dry-run-format", "xml"}, "--dry-run-format"},
		{[]string{"kill", "test", "wc", "--config-property", "novalue"}, "want KEY=VALUE"},
	}
	for _, tt := range bad {
		rc.calls = nil
		err := run(tt.args...)
		var ee *exitError
		if err == nil || !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("egret %q = %v, want a usage error containing %q", tt.args, err, tt.msg)
		}
		if len(rc.calls) != 0 {
			t.Errorf("egret %q reached the client: %q", tt.args, rc.calls)
		}
	}
}
