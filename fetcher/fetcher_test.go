package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary act as a separate egret process fetching one
// artifact, for the cross-process cache test.
func TestMain(m *testing.M) {
	if uri := os.Getenv("FETCHER_TEST_CHILD_URI"); uri != "" {
		f := &Fetcher{CacheDir: os.Getenv("FETCHER_TEST_CACHE")}
		_, err := f.Fetch(context.Background(), Request{URI: uri, Dest: os.Getenv("FETCHER_TEST_DEST"), Extract: true, Cache: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// release makes a small heron-core-like tar.gz and returns its bytes.
func release(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "heron-core.tar.gz")
	writeTarGz(t, p, []entry{
		{name: "heron-core/", typ: 53, mode: 0o755},
		{name: "heron-core/bin/heron-tmanager", body: "#!/bin/sh\necho tm\n", mode: 0o755},
		{name: "heron-core/release.yaml", body: "heron.build.version: sim\n"},
	})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server serves body at /heron-core.tar.gz and counts GETs.
type server struct {
	*httptest.Server
	gets atomic.Int64
}

func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int64)) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int64(0)
		if r.Method == http.MethodGet {
			n = s.gets.Add(1)
		}
		h(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func quick(cache string) *Fetcher {
	return &Fetcher{CacheDir: cache, Deadline: 5 * time.Second, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
}

func TestFetchExtractsAndServesSecondFromCache(t *testing.T) {
	body := release(t)
	s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) { w.Write(body) })
	f := quick(t.TempDir())
	uri := s.URL + "/heron-core.tar.gz?checksum=" + sha(body)
	for i, wantHit := range []bool{false, true} {
		dest := filepath.Join(t.TempDir(), "sandbox")
		res, err := f.Fetch(context.Background(), Request{URI: uri, Dest: dest, Extract: true, Cache: true})
		if err != nil {
			t.Fatalf("Fetch #%d = %v", i+1, err)
		}
		if res.CacheHit != wantHit {
			t.Errorf("Fetch #%d CacheHit = %v, want %v", i+1, res.CacheHit, wantHit)
		}
		b, err := os.ReadFile(filepath.Join(dest, "heron-core/bin/heron-tmanager"))
		if err != nil || !strings.Contains(string(b), "echo tm") {
			t.Errorf("Fetch #%d: heron-tmanager = %q, %v", i+1, b, err)
		}
	}
	if got := s.gets.Load(); got != 1 {
		t.Errorf("server saw %d GETs, want 1 (the second fetch is a cache hit)", got)
	}
}

func TestFetchChecksumMismatchNamesBothDigests(t *testing.T) {
	body := release(t)
	s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) { w.Write(body) })
	wrong := "sha256:" + strings.Repeat("ab", 32)
	dest := filepath.Join(t.TempDir(), "sandbox")
	_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: s.URL + "/heron-core.tar.gz", Checksum: wrong, Dest: dest, Extract: true, Cache: true})
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("Fetch = %v, want a ChecksumError", err)
	}
	if !strings.Contains(err.Error(), strings.Repeat("ab", 32)) || !strings.Contains(err.Error(), sha(body)[7:]) || !strings.Contains(err.Error(), s.URL) {
		t.Errorf("error %q does not name the URI and both digests", err)
	}
	if s.gets.Load() != 1 {
		t.Errorf("a checksum mismatch was retried: %d GETs", s.gets.Load())
	}
	if left, _ := os.ReadDir(dest); len(left) != 0 {
		t.Errorf("left in the sandbox: %v", left)
	}
}

func TestFetchPermanentAndTransientFailures(t *testing.T) {
	body := release(t)
	t.Run("404 fails at once with the answer", func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) { http.Error(w, "no such release", 404) })
		_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: s.URL + "/heron-core.tar.gz", Dest: t.TempDir(), Extract: true})
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(err.Error(), "no such release") || !strings.Contains(err.Error(), s.URL) {
			t.Fatalf("Fetch = %v, want a 404 naming the URI and the server's answer", err)
		}
		if s.gets.Load() != 1 {
			t.Errorf("404 was retried: %d GETs", s.gets.Load())
		}
	})
	t.Run("500 then success", func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			if n <= 2 {
				http.Error(w, "busy", 500)
				return
			}
			w.Write(body)
		})
		_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: s.URL + "/heron-core.tar.gz", Checksum: sha(body), Dest: t.TempDir(), Extract: true})
		if err != nil {
			t.Fatalf("Fetch = %v, want success on the third attempt", err)
		}
		if s.gets.Load() != 3 {
			t.Errorf("GETs = %d, want 3", s.gets.Load())
		}
	})
	t.Run("truncated body then success", func(t *testing.T) {
		s := serve(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			if n == 1 {
				w.Write(body[:len(body)/2])
				return // the connection closes short of Content-Length
			}
			w.Write(body)
		})
		dest := t.TempDir()
		_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: s.URL + "/heron-core.tar.gz", Checksum: sha(body), Dest: dest, Extract: true, Cache: true})
		if err != nil {
			t.Fatalf("Fetch = %v, want success after the truncated first answer", err)
		}
		if _, err := os.Stat(filepath.Join(dest, "heron-core/release.yaml")); err != nil {
			t.Error(err)
		}
	})
	t.Run("slow server hits the deadline", func(t *testing.T) {
		release := make(chan struct{})
		s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		f := quick(t.TempDir())
		f.Deadline = 300 * time.Millisecond
		dest := t.TempDir()
		_, err := f.Fetch(context.Background(), Request{URI: s.URL + "/heron-core.tar.gz", Dest: dest, Extract: true})
		if err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("Fetch = %v, want a deadline error", err)
		}
		if left, _ := os.ReadDir(dest); len(left) != 0 {
			t.Errorf("left in the sandbox: %v", left)
		}
	})
}

func TestFetchRefusesVCSAndBadURIs(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"git::https://example.com/r.git", "git and hg sources are disabled"},
		{"https://example.com/repo.git", "git and hg sources are disabled"},
		{"hg::http://example.com/r", "git and hg sources are disabled"},
		{"relative/path.tar.gz", "no scheme"},
		{"http://x/a.tgz?checksum=sha256:zz", "not 32 hexadecimal bytes"},
		{"http://x/a.tgz?checksum=crc:00", "unknown type"},
	}
	for _, tt := range tests {
		_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: tt.uri, Dest: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.uri) {
			t.Errorf("Fetch(%q) = %v, want an error naming the URI and containing %q", tt.uri, err, tt.want)
		}
	}
}

func TestFetchFileURIOptions(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "run.sh")
	os.WriteFile(src, []byte("#!/bin/sh\n"), 0o644)
	dest := filepath.Join(dir, "sandbox")
	res, err := quick(filepath.Join(dir, "cache")).Fetch(context.Background(),
		Request{URI: "file://" + src, Dest: dest, Executable: true, OutputFile: "bin/start", Cache: true})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dest, "bin/start"))
	if err != nil || fi.Mode().Perm() != 0o755 || res.Path != filepath.Join(dest, "bin/start") {
		t.Errorf("output file: %v %v %q, want bin/start with mode 0755", fi, err, res.Path)
	}
}

func TestConcurrentFetchesFromProcessesDownloadOnce(t *testing.T) {
	body := release(t)
	var mu sync.Mutex
	s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		mu.Lock() // serialise so overlapping downloads would be counted, not merged
		defer mu.Unlock()
		time.Sleep(50 * time.Millisecond) // a slow download widens the race window
		w.Write(body)
	})
	cache := t.TempDir()
	uri := s.URL + "/heron-core.tar.gz?checksum=" + sha(body)
	var cmds []*exec.Cmd
	for i := 0; i < 4; i++ {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "FETCHER_TEST_CHILD_URI="+uri, "FETCHER_TEST_CACHE="+cache,
			"FETCHER_TEST_DEST="+filepath.Join(t.TempDir(), "sandbox"))
		out := &strings.Builder{}
		c.Stderr = out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v: %s", i, err, c.Stderr)
		}
	}
	if got := s.gets.Load(); got != 1 {
		t.Errorf("%d downloads for 4 processes, want 1", got)
	}
}

func TestCacheEvictsLeastRecentlyUsedUnderTheBound(t *testing.T) {
	cache := t.TempDir()
	f := quick(cache)
	f.MaxCacheBytes = 2500
	dir := t.TempDir()
	var uris []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("a%d.bin", i))
		os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 1000)), 0o644)
		uris = append(uris, "file://"+p)
	}
	fetch := func(uri string) {
		t.Helper()
		if _, err := f.Fetch(context.Background(), Request{URI: uri, Dest: t.TempDir(), Cache: true}); err != nil {
			t.Fatal(err)
		}
	}
	fetch(uris[0])
	fetch(uris[1])
	// Make a0 the most recently used, then a third entry forces one eviction: a1.
	past := time.Now().Add(-time.Hour)
	entries, _ := f.List()
	for _, e := range entries {
		if e.URI == uris[1] {
			os.Chtimes(filepath.Join(f.entryDir(e.Key), "meta.json"), past, past)
		}
	}
	fetch(uris[2])
	entries, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var total int64
	for _, e := range entries {
		got = append(got, filepath.Base(e.URI))
		total += e.Size()
	}
	if total > f.MaxCacheBytes {
		t.Errorf("cache holds %d bytes, bound %d", total, f.MaxCacheBytes)
	}
	if strings.Contains(strings.Join(got, ","), "a1.bin") || len(got) != 2 {
		t.Errorf("entries after eviction = %v, want a0.bin and a2.bin", got)
	}
	// Prune to zero empties it.
	if _, err := f.Prune(0); err != nil {
		t.Fatal(err)
	}
	if entries, _ := f.List(); len(entries) != 0 {
		t.Errorf("after Prune(0): %d entries", len(entries))
	}
}
