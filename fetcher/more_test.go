package fetcher

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

func TestExtractRefusesHardLinksOutside(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dotdot", []entry{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}, "points outside the tree"},
		{"absolute", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, "points outside the tree"},
		{"through a symlink", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "."},
			{name: "f", body: "x"},
			{name: "h", typ: tar.TypeLink, link: "l/f"},
		}, "goes through the symbolic link"},
		{"not in the archive", []entry{{name: "h", typ: tar.TypeLink, link: "missing"}}, "not in the archive before it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			arc := filepath.Join(dir, "a.tar.gz")
			writeTarGz(t, arc, tt.entries)
			dest := filepath.Join(dir, "out")
			err := Extract(context.Background(), arc, dest, FormatNone, DefaultLimits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Extract = %v, want an error containing %q", err, tt.want)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("destination exists after a refused archive: %v", err)
			}
		})
	}
	// A contained hard link is kept as a second name of the same file.
	dir := t.TempDir()
	arc := filepath.Join(dir, "ok.tar.gz")
	writeTarGz(t, arc, []entry{{name: "f", body: "same"}, {name: "g", typ: tar.TypeLink, link: "f"}})
	dest := filepath.Join(dir, "out")
	if err := Extract(context.Background(), arc, dest, FormatNone, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(dest, "f"))
	b, err := os.Stat(filepath.Join(dest, "g"))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("g is not a hard link of f: %v", err)
	}
}

// TestExtractEveryFormat builds each format with the system's own tools (tar,
// bzip2, xz) or Go writers and checks the tree that comes out.
func TestExtractEveryFormat(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "heron-core/bin"), 0o755)
	os.WriteFile(filepath.Join(src, "heron-core/bin/heron-stmgr"), []byte("stmgr"), 0o755)
	os.Symlink("heron-stmgr", filepath.Join(src, "heron-core/bin/stmgr"))
	dir := t.TempDir()
	for _, tt := range []struct{ name, flag string }{
		{"r.tar", "-cf"}, {"r.tgz", "-czf"}, {"r.tar.bz2", "-cjf"}, {"r.tar.xz", "-cJf"},
	} {
		if out, err := exec.Command("tar", tt.flag, filepath.Join(dir, tt.name), "-C", src, "heron-core").CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v: %s", tt.flag, err, out)
		}
	}
	var xbuf bytes.Buffer
	xw, _ := xz.NewWriter(&xbuf)
	xw.Write([]byte("single"))
	xw.Close()
	os.WriteFile(filepath.Join(dir, "one.txt.xz"), xbuf.Bytes(), 0o644)
	if out, err := exec.Command("sh", "-c", "printf single | bzip2 > "+filepath.Join(dir, "one.txt.bz2")).CombinedOutput(); err != nil {
		t.Fatalf("bzip2: %v: %s", err, out)
	}
	for _, name := range []string{"r.tar", "r.tgz", "r.tar.bz2", "r.tar.xz"} {
		dest := filepath.Join(dir, "out-"+name)
		if err := Extract(context.Background(), filepath.Join(dir, name), dest, FormatNone, DefaultLimits); err != nil {
			t.Errorf("Extract(%s) = %v", name, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dest, "heron-core/bin/stmgr")); err != nil || string(b) != "stmgr" {
			t.Errorf("%s: heron-core/bin/stmgr = %q, %v", name, b, err)
		}
	}
	for _, name := range []string{"one.txt.xz", "one.txt.bz2"} {
		dest := filepath.Join(dir, "out-"+name)
		if err := Extract(context.Background(), filepath.Join(dir, name), dest, FormatNone, DefaultLimits); err != nil {
			t.Errorf("Extract(%s) = %v", name, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dest, "one.txt")); err != nil || string(b) != "single" {
			t.Errorf("%s: one.txt = %q, %v", name, b, err)
		}
	}
}

func TestConcurrentFetchesFromGoroutinesDownloadOnce(t *testing.T) {
	body := release(t)
	s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		time.Sleep(50 * time.Millisecond) // a slow download widens the race window
		w.Write(body)
	})
	f := quick(t.TempDir())
	uri := s.URL + "/heron-core.tar.gz?checksum=" + sha(body)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	dests := make([]string, len(errs))
	for i := range errs {
		dests[i] = filepath.Join(t.TempDir(), "sandbox")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.Fetch(context.Background(), Request{URI: uri, Dest: dests[i], Extract: true, Cache: true})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetch %d: %v", i, err)
		} else if _, err := os.Stat(filepath.Join(dests[i], "heron-core/release.yaml")); err != nil {
			t.Errorf("fetch %d: %v", i, err)
		}
	}
	if got := s.gets.Load(); got != 1 {
		t.Errorf("%d downloads for %d goroutines, want 1", got, len(errs))
	}
}

func TestFetchMesosURIOptions(t *testing.T) {
	body := release(t)
	s := serve(t, func(w http.ResponseWriter, r *http.Request, _ int64) { w.Write(body) })
	uri := s.URL + "/heron-core.tar.gz?checksum=" + sha(body)
	for _, cache := range []bool{false, true} {
		// executable overrides extract, as in Mesos.
		dest := t.TempDir()
		res, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: uri, Dest: dest, Extract: true, Executable: true, Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dest, "heron-core.tar.gz"))
		if err != nil || fi.Mode().Perm() != 0o755 || res.Path != filepath.Join(dest, "heron-core.tar.gz") {
			t.Errorf("cache=%v: executable archive placed as %q (%v, %v), want heron-core.tar.gz mode 0755, not extracted", cache, res.Path, fi, err)
		}
		if _, err := os.Stat(filepath.Join(dest, "heron-core")); err == nil {
			t.Errorf("cache=%v: executable archive was extracted", cache)
		}
		// output_file may not leave the sandbox.
		for _, out := range []string{"../escape", "/tmp/escape"} {
			_, err := quick(t.TempDir()).Fetch(context.Background(), Request{URI: uri, Dest: dest, OutputFile: out, Cache: cache})
			if err == nil || !strings.Contains(err.Error(), "leaves the destination") {
				t.Errorf("cache=%v: OutputFile %q: %v, want a refusal", cache, out, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(filepath.Dir(dest), "escape")); err == nil {
			t.Errorf("a file was written outside the sandbox")
		}
	}
}
