package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

func init() {
	register(scenario{order: 10, name: "disk-full", timeout: 3 * time.Minute, run: diskFull,
		about: "egret fetch onto a file system that fills up mid-download and mid-extraction: a clear error, no partial release, the cache intact"})
}

// artifact is a tar.gz built in memory, with the digest of each file it holds.
type artifact struct {
	name  string
	data  []byte
	files map[string]string // path → sha256
}

// makeArtifact builds a heron-core-like tar.gz of n files of size bytes each; random
// content does not compress, zeros compress to almost nothing.
func makeArtifact(name string, n, size int, random bool, r *rand.Rand) artifact {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	a := artifact{name: name, files: map[string]string{}}
	_ = tw.WriteHeader(&tar.Header{Name: "heron-core/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "heron-core/lib/", Typeflag: tar.TypeDir, Mode: 0o755})
	for i := 0; i < n; i++ {
		body := make([]byte, size)
		if random {
			r.Read(body)
		}
		p := fmt.Sprintf("heron-core/lib/part-%03d.bin", i)
		_ = tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
		_, _ = tw.Write(body)
		sum := sha256.Sum256(body)
		a.files[p] = hex.EncodeToString(sum[:])
	}
	_ = tw.Close()
	_ = gz.Close()
	a.data = buf.Bytes()
	return a
}

func (a artifact) sha256() string {
	s := sha256.Sum256(a.data)
	return hex.EncodeToString(s[:])
}

// serveArtifacts serves each artifact at /NAME on loopback; slow artifacts are sent in
// small chunks so the fetch is still downloading when the disk fills.
func serveArtifacts(ctx context.Context, arts ...artifact) (string, func(), error) {
	mux := http.NewServeMux()
	for _, a := range arts {
		a := a
		mux.HandleFunc("/"+a.name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(a.data)))
			w.Header().Set("Content-Type", "application/gzip")
			_, _ = w.Write(a.data)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	return "http://" + ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// treeDigest maps every regular file under root to its sha256, and every directory
// and link to a marker, so two calls can be compared for "nothing changed".
func treeDigest(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		// Lock files are the cache's by design: empty, kept, and not content.
		if strings.HasSuffix(rel, ".lock") {
			return nil
		}
		switch {
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(s[:])
		case d.IsDir():
			out[rel] = "dir"
		default:
			t, _ := os.Readlink(p)
			out[rel] = "link:" + t
		}
		return nil
	})
	return out, err
}

// diffTrees describes how two tree digests differ, or returns "".
func diffTrees(before, after map[string]string) string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	if len(d) > 8 {
		d = append(d[:8], fmt.Sprintf("and %d more", len(d)-8))
	}
	return strings.Join(d, ", ")
}

// checkRelease compares an extracted release with the artifact it came from.
func checkRelease(dir string, a artifact) error {
	got, err := treeDigest(dir)
	if err != nil {
		return err
	}
	for p, sum := range a.files {
		if got[p] != sum {
			return fmt.Errorf("%s: %s missing or different", dir, p)
		}
	}
	return nil
}

// smallFS mounts a tmpfs of size bytes at dir when the suite runs as root. Without root
// it returns a nil unmount and the caller limits file size with prlimit instead.
func smallFS(dir string, size int64) (unmount func() error, err error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", size)); err != nil {
		return nil, fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return func() error {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Busy: detach it so nothing stays mounted after the suite.
			if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
				return fmt.Errorf("unmount %s: %v, then %v", dir, err, err2)
			}
		}
		return nil
	}, nil
}

// fetchResult is one run of `egret fetch`.
type fetchResult struct {
	out  string
	err  error
	took time.Duration
}

func (s *scen) egretFetch(ctx context.Context, cacheDir, fsizeLimit, uri, dest string) fetchResult {
	bin, err := s.egret(ctx)
	if err != nil {
		return fetchResult{err: err}
	}
	args := []string{bin, "fetch", uri, dest}
	if fsizeLimit != "" {
		args = append([]string{"prlimit", "--fsize=" + fsizeLimit}, args...)
	}
	cmd, err := s.procs.command(ctx, "", args[0], args[1:]...)
	if err != nil {
		return fetchResult{err: err}
	}
	cmd.Env = append(cmd.Env, "EGRET_CACHE_DIR="+cacheDir)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	return fetchResult{out: strings.TrimSpace(string(out)), err: err, took: time.Since(start)}
}

// lastLine is the last non-empty line of a command's output, where egret puts its error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func diskFull(ctx context.Context, s *scen) error {
	r := rand.New(rand.NewSource(s.opts.seed))
	// small fits; big's download alone overflows the file system; bomb downloads in a
	// few KiB and unpacks to 16 MiB, which overflows it only while a filler takes the room.
	const fsSize = 32 << 20
	small := makeArtifact("small.tar.gz", 4, 1<<20, true, r)
	big := makeArtifact("big.tar.gz", 40, 1<<20, true, r)
	bomb := makeArtifact("bomb.tar.gz", 16, 1<<20, false, r)
	s.logf("artifacts: small %d KiB, big %d KiB (larger than the disk), bomb %d KiB unpacking to 16 MiB",
		len(small.data)>>10, len(big.data)>>10, len(bomb.data)>>10)
	base, stop, err := serveArtifacts(ctx, small, big, bomb)
	if err != nil {
		return err
	}
	defer stop()
	uri := func(a artifact) string { return base + "/" + a.name + "?checksum=sha256:" + a.sha256() }

	disk := filepath.Join(s.dir, "disk")
	unmount, err := smallFS(disk, fsSize)
	if err != nil {
		return err
	}
	limit := ""
	if unmount != nil {
		s.logf("mounted a %d MiB tmpfs on %s", fsSize>>20, disk)
		defer func() {
			if err := unmount(); err != nil {
				s.failf("%v", err)
			} else {
				s.logf("unmounted %s", disk)
			}
		}()
	} else {
		limit = fmt.Sprint(fsSize)
		s.logf("not root: limiting egret's file size to %d MiB with prlimit instead of a small file system", fsSize>>20)
		if err := os.MkdirAll(disk, 0o755); err != nil {
			return err
		}
	}
	cache := filepath.Join(disk, "cache")

	// 1. A release that fits, to have something in the cache to keep intact.
	res := s.egretFetch(ctx, cache, limit, uri(small), filepath.Join(disk, "small-1"))
	if res.err != nil {
		return fmt.Errorf("fetch of the small release onto an empty disk failed: %v: %s", res.err, lastLine(res.out))
	}
	if err := checkRelease(filepath.Join(disk, "small-1"), small); err != nil {
		return fmt.Errorf("small release after a successful fetch: %v", err)
	}
	s.logf("fetched the small release in %v", res.took.Round(time.Millisecond))
	cacheBefore, err := treeDigest(cache)
	if err != nil {
		return fmt.Errorf("read the cache: %v", err)
	}

	// 2. A download larger than the disk.
	s.failedFetch(ctx, cache, limit, disk, uri(big), big, cacheBefore)

	// 3. An extraction that fills the disk: a filler leaves 8 MiB free.
	filler := filepath.Join(disk, "filler")
	if unmount != nil {
		var st syscall.Statfs_t
		if err := syscall.Statfs(disk, &st); err != nil {
			return err
		}
		free := int64(st.Bavail) * st.Bsize
		if err := writeZeros(filler, free-8<<20); err != nil {
			return fmt.Errorf("write the filler: %v", err)
		}
		s.logf("filled the disk to 8 MiB free")
	}
	s.failedFetch(ctx, cache, limit, disk, uri(bomb), bomb, cacheBefore)

	// 4. The cache still serves the release it held, whole.
	res = s.egretFetch(ctx, cache, limit, uri(small), filepath.Join(disk, "small-2"))
	if res.err != nil {
		s.failf("fetch of the cached small release after the failures: %v: %s", res.err, lastLine(res.out))
	} else if err := checkRelease(filepath.Join(disk, "small-2"), small); err != nil {
		s.failf("cached small release after the failures: %v", err)
	} else {
		s.logf("the cache still serves the small release, whole, in %v", res.took.Round(time.Millisecond))
	}

	// 5. With room again, the bomb's release comes whole: nothing half-extracted was
	// kept and taken for complete.
	os.Remove(filler)
	res = s.egretFetch(ctx, cache, limit, uri(bomb), filepath.Join(disk, "bomb-2"))
	if res.err != nil {
		s.failf("fetch of the bomb release once the disk has room again: %v: %s", res.err, lastLine(res.out))
	} else if err := checkRelease(filepath.Join(disk, "bomb-2"), bomb); err != nil {
		s.failf("bomb release fetched after the disk-full failure is not whole: %v", err)
	} else {
		s.logf("with room again, the bomb release fetched whole in %v", res.took.Round(time.Millisecond))
	}
	return nil
}

// failedFetch fetches an artifact that cannot fit and checks the failure: a clear
// error, nothing left at the destination or elsewhere on the disk, the cache unchanged.
func (s *scen) failedFetch(ctx context.Context, cache, limit, disk, uri string, a artifact, cacheBefore map[string]string) {
	dest := filepath.Join(disk, strings.TrimSuffix(a.name, ".tar.gz"))
	diskBefore, _ := treeDigest(disk)
	res := s.egretFetch(ctx, cache, limit, uri, dest)
	if res.err == nil {
		s.failf("fetch of %s onto a full disk succeeded (%s)", a.name, lastLine(res.out))
		os.RemoveAll(dest)
		return
	}
	if _, ok := res.err.(*exec.ExitError); !ok {
		s.failf("run egret fetch: %v", res.err)
		return
	}
	msg := lastLine(res.out)
	s.logf("fetch of %s failed after %v: %s", a.name, res.took.Round(time.Millisecond), msg)
	if !clearDiskError(msg) {
		s.failf("fetch of %s: the error does not say the disk is full: %q", a.name, msg)
	}
	if ents, err := os.ReadDir(dest); err == nil && len(ents) > 0 {
		s.failf("fetch of %s left a partial release in %s (%d entries)", a.name, dest, len(ents))
	}
	after, _ := treeDigest(disk)
	delete(after, filepath.Base(dest)) // an empty destination directory is no release
	cacheRel, _ := filepath.Rel(disk, cache)
	if kept := wholeDownload(after, cacheRel, a); kept != "" {
		s.logf("the download itself is kept in the cache, whole (its digest checked): %s", kept)
	}
	if d := diffTrees(diskBefore, after); d != "" {
		s.failf("fetch of %s left files behind on the full disk: %s", a.name, d)
	}
	if cacheAfter, err := treeDigest(cache); err != nil {
		s.failf("read the cache after the failed fetch of %s: %v", a.name, err)
	} else {
		wholeDownload(cacheAfter, ".", a)
		if d := diffTrees(cacheBefore, cacheAfter); d != "" {
			s.failf("the failed fetch of %s changed the cache: %s", a.name, d)
		}
	}
	os.RemoveAll(dest)
}

// wholeDownload removes from a tree digest a cache entry that holds exactly the
// artifact's complete download (a blob whose digest is the artifact's, and its
// metadata) and nothing extracted: a verified download is no partial release. It
// returns the entry's path, or "".
func wholeDownload(tree map[string]string, cacheRel string, a artifact) string {
	for p, sum := range tree {
		if filepath.Base(p) != "blob" || sum != a.sha256() {
			continue
		}
		entry := filepath.Dir(p)
		if rel, err := filepath.Rel(cacheRel, entry); err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		for q := range tree {
			if q == entry || strings.HasPrefix(q, entry+"/") {
				switch filepath.Base(q) {
				case "blob", "meta.json", filepath.Base(entry):
				default:
					return "" // something else (an extracted tree?) is there: leave it to the diff
				}
			}
		}
		for q := range tree {
			if q == entry || strings.HasPrefix(q, entry+"/") {
				delete(tree, q)
			}
		}
		return entry
	}
	return ""
}

// writeZeros writes a file of n zero bytes.
func writeZeros(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := int64(len(buf))
		if n < k {
			k = n
		}
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	return f.Close()
}

// clearDiskError reports whether an error message tells a user the disk is full.
func clearDiskError(msg string) bool {
	m := strings.ToLower(msg)
	for _, w := range []string{"no space left", "disk full", "file too large", "quota"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}
