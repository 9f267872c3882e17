package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"egret/fetcher"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		give string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"512MiB", 512 << 20, true}, {"10GiB", 10 << 30, true}, {"100B", 100, true},
		{"12XB", 0, false}, {"-1", 0, false}, {"ten", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.give)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.give, got, err, tt.want, tt.ok)
		}
	}
}

// TestFetchAndCacheCommands runs egret fetch, cache list and cache prune
// against a real HTTP server and checks what lands on disk.
func TestFetchAndCacheCommands(t *testing.T) {
	body := []byte("#!/bin/sh\necho hello\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/run.sh" {
			http.Error(w, "no such artifact", http.StatusNotFound)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	}))
	defer srv.Close()
	cache := filepath.Join(t.TempDir(), "cache")
	dest := filepath.Join(t.TempDir(), "sandbox")
	run := func(args ...string) error {
		return newApp().Run(append([]string{"egret"}, args...))
	}
	if err := run("fetch", "--cache-dir", cache, "--executable", "--output-file", "bin/run", srv.URL+"/run.sh", dest); err != nil {
		t.Fatalf("egret fetch = %v", err)
	}
	fi, err := os.Stat(filepath.Join(dest, "bin/run"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/run: %v, %v; want an executable file", fi, err)
	}
	err = run("fetch", "--cache-dir", cache, srv.URL+"/missing.tar.gz", dest)
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/missing.tar.gz") || !strings.Contains(err.Error(), "404") {
		t.Errorf("egret fetch of a missing artifact = %v, want an error naming the URI and the 404", err)
	}
	if err := run("fetch", "--cache-dir", cache, srv.URL+"/run.sh"); err == nil {
		t.Errorf("egret fetch with one argument succeeded")
	}
	f := &fetcher.Fetcher{CacheDir: cache}
	if entries, _ := f.List(); len(entries) != 1 {
		t.Fatalf("cache holds %d entries after one fetch, want 1", len(entries))
	}
	if err := run("cache", "list", "--cache-dir", cache); err != nil {
		t.Errorf("egret cache list = %v", err)
	}
	if err := run("cache", "prune", "--cache-dir", cache, "--max-size", "0"); err != nil {
		t.Errorf("egret cache prune = %v", err)
	}
	if entries, _ := f.List(); len(entries) != 0 {
		t.Errorf("cache holds %d entries after prune --max-size 0", len(entries))
	}
	if err := run("cache", "prune", "--cache-dir", cache, "--max-size", "lots"); err == nil || !strings.Contains(err.Error(), "--max-size") {
		t.Errorf("prune --max-size lots = %v, want an error naming the flag", err)
	}
}
