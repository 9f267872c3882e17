package container

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestDetectHost(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		docker bool
		want   string
	}{
		{"plain", nil, false, "box"},
		{"kubernetes", map[string]string{"POD_NAME": "p-0", "HOST": "ignored"}, true, "box.example.com"},
		{"docker with HOST", map[string]string{"HOST": "10.0.0.5"}, true, "10.0.0.5"},
		{"docker without HOST", nil, true, "box"},
		{"HOST outside docker is ignored", map[string]string{"HOST": "10.0.0.5"}, false, "box"},
	}
	for _, tt := range tests {
		got := detectHost(hostProbe{
			Getenv:   func(k string) string { return tt.env[k] },
			Exists:   func(p string) bool { return p == "/.dockerenv" && tt.docker },
			Hostname: func() (string, error) { return "box", nil },
			FQDN:     func(h string) string { return h + ".example.com" },
		})
		if got != tt.want {
			t.Errorf("%s: detectHost = %q, want %q", tt.name, got, tt.want)
		}
	}
	got := detectHost(hostProbe{
		Getenv: func(string) string { return "" }, Exists: func(string) bool { return false },
		Hostname: func() (string, error) { return "", errors.New("no") }, FQDN: func(h string) string { return h },
	})
	if got != "localhost" {
		t.Errorf("detectHost without a host name = %q, want localhost", got)
	}
}

func TestStatusFileRoundTripAndVersion(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, StatusFileName(2))
	s := StatusFile{FormatVersion: StatusFormatVersion, Topology: "wc", Shard: 2, State: "running",
		Updated: time.Now().UTC(), Processes: []ProcessStatus{{Name: "stmgr-2", PID: 7, State: "running"}}}
	b, _ := jsonIndent(s)
	if err := writeAtomic(p, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Shard != 2 || len(got.Processes) != 1 || got.Processes[0].PID != 7 {
		t.Errorf("ReadStatus = %+v", got)
	}
	s.FormatVersion = 2
	b, _ = jsonIndent(s)
	writeAtomic(p, b)
	if _, err := ReadStatus(p); err == nil {
		t.Errorf("ReadStatus accepted format_version 2")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp")); len(m) != 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

func TestLoadLogging(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "heron_internals.yaml")
	writeAtomic(p, []byte("heron.logging.directory: \"logs\"\nheron.logging.maximum.size.mb: 7\nheron.logging.maximum.files: 2\n"))
	l, err := LoadLogging(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Dir != "logs" || l.MaxBytes != 7<<20 || l.MaxFiles != 2 {
		t.Errorf("LoadLogging = %+v", l)
	}
	if _, err := LoadLogging(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Errorf("LoadLogging(missing) succeeded")
	}
}
