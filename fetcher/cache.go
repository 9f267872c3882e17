package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// The cache directory holds, per artifact, a directory entries/KEY with
// meta.json, the downloaded file (blob) and, once asked for, its extracted tree
// (tree/, read-only, hard-linked into sandboxes). KEY is the checksum when it is
// known, otherwise a digest of the URI and the server's validators. A lock file
// locks/KEY.lock serialises work on one entry across processes; eviction skips
// entries whose lock is held.

// cacheFormatVersion is meta.json's format_version.
const cacheFormatVersion = 1

// Entry is one cached artifact.
type Entry struct {
	FormatVersion int       `json:"format_version"`
	Key           string    `json:"key"`
	URI           string    `json:"uri"`
	Digest        string    `json:"digest"`
	Bytes         int64     `json:"bytes"`      // the download
	TreeBytes     int64     `json:"tree_bytes"` // the extracted tree, 0 when not extracted
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	LastUsed      time.Time `json:"-"` // meta.json's modification time
}

// Size is the disk the entry takes.
func (e Entry) Size() int64 { return e.Bytes + e.TreeBytes }

func (f *Fetcher) entryDir(key string) string { return filepath.Join(f.CacheDir, "entries", key) }
func (f *Fetcher) lockPath(key string) string {
	return filepath.Join(f.CacheDir, "locks", key+".lock")
}

// cacheKey is the entry's name: the checksum when given; otherwise the URI and
// what the server says of its version (ETag, Last-Modified, or a file's size and
// time). "" means the artifact cannot be cached safely (no validators).
func (f *Fetcher) cacheKey(ctx context.Context, src source) (string, error) {
	if src.sum.typ != "" {
		return src.sum.typ + "-" + src.sum.hex, nil
	}
	var validators string
	switch src.url.Scheme {
	case "file":
		fi, err := os.Stat(src.url.Path)
		if err != nil {
			return "", err
		}
		validators = fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, src.url.String(), nil)
		if err != nil {
			return "", err
		}
		resp, err := (&http.Client{Transport: transport}).Do(req)
		if err != nil {
			return "", nil // the download will report the trouble
		}
		resp.Body.Close()
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if resp.StatusCode != http.StatusOK || (etag == "" && lm == "") {
			return "", nil
		}
		validators = etag + "|" + lm + "|" + resp.Header.Get("Content-Length")
	default:
		return "", nil
	}
	sum := sha256.Sum256([]byte(src.url.String() + "\n" + validators))
	return "uri-" + hex.EncodeToString(sum[:16]), nil
}

// lockEntry takes the entry's lock, waiting for another fetch of the same
// artifact (in this process or another) to finish.
func (f *Fetcher) lockEntry(ctx context.Context, key string) (*flock.Flock, error) {
	if err := os.MkdirAll(filepath.Join(f.CacheDir, "locks"), 0o755); err != nil {
		return nil, err
	}
	l := flock.New(f.lockPath(key))
	ok, err := l.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock cache entry %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock cache entry %s: %w", key, ctx.Err())
	}
	return l, nil
}

func (f *Fetcher) fetchCached(ctx context.Context, req Request, src source) (Result, error) {
	key, err := f.cacheKey(ctx, src)
	if err != nil {
		return Result{}, err
	}
	if key == "" {
		return f.fetchDirect(ctx, req, src)
	}
	lock, err := f.lockEntry(ctx, key)
	if err != nil {
		return Result{}, err
	}
	res, err := f.fetchLocked(ctx, req, src, key)
	lock.Unlock()
	if err != nil {
		return Result{}, err
	}
	// Trimming the cache is housekeeping: a failure to trim fails no fetch.
	_, _ = f.Prune(f.maxCache(), key)
	return res, nil
}

func (f *Fetcher) maxCache() int64 {
	if f.MaxCacheBytes > 0 {
		return f.MaxCacheBytes
	}
	return DefaultMaxCacheBytes
}

// fetchLocked runs with the entry's lock held.
func (f *Fetcher) fetchLocked(ctx context.Context, req Request, src source, key string) (Result, error) {
	dir := f.entryDir(key)
	e, err := readEntry(dir)
	hit := err == nil
	if !hit {
		if !errors.Is(err, fs.ErrNotExist) {
			// A damaged entry is replaced, not trusted.
			os.RemoveAll(dir)
		}
		if e, err = f.fill(ctx, src, key); err != nil {
			return Result{}, err
		}
	}
	res := Result{Digest: e.Digest, Bytes: e.Bytes, CacheHit: hit}
	format := FormatOf(e.Name)
	if extracts(req) && format != FormatNone {
		tree := filepath.Join(dir, "tree")
		if _, err := os.Stat(tree); err != nil {
			res.CacheHit = false
			f.report(src.uri, "extract", 0, -1)
			if err := extract(ctx, filepath.Join(dir, "blob"), tree, format, f.limits(), true); err != nil {
				return Result{}, err
			}
			size, err := treeSize(tree)
			if err != nil {
				return Result{}, err
			}
			e.TreeBytes = size
			if err := writeEntry(dir, e); err != nil {
				return Result{}, err
			}
		}
		f.report(src.uri, "link", 0, -1)
		if err := placeTree(tree, req.Dest, true); err != nil {
			return Result{}, err
		}
		res.Path = req.Dest
	} else {
		out := outputPath(req, src)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return Result{}, err
		}
		if err := placeFile(filepath.Join(dir, "blob"), out, req.Executable); err != nil {
			return Result{}, err
		}
		res.Path = out
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, "meta.json"), now, now) // LRU order; best effort
	return res, nil
}

// fill downloads the artifact into a new entry, made whole before it is renamed
// into place.
func (f *Fetcher) fill(ctx context.Context, src source, key string) (Entry, error) {
	tmpRoot := filepath.Join(f.CacheDir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return Entry{}, err
	}
	if err := os.MkdirAll(filepath.Join(f.CacheDir, "entries"), 0o755); err != nil {
		return Entry{}, err
	}
	tmp, err := os.MkdirTemp(tmpRoot, key+"-")
	if err != nil {
		return Entry{}, err
	}
	defer os.RemoveAll(tmp)
	dl, err := f.download(ctx, src, filepath.Join(tmp, "blob"), true)
	if err != nil {
		return Entry{}, err
	}
	if err := os.Chmod(filepath.Join(tmp, "blob"), 0o444); err != nil {
		return Entry{}, err
	}
	e := Entry{FormatVersion: cacheFormatVersion, Key: key, URI: src.uri, Digest: dl.digest,
		Bytes: dl.size, Name: src.name, Created: time.Now().UTC()}
	if err := writeEntry(tmp, e); err != nil {
		return Entry{}, err
	}
	if err := os.Rename(tmp, f.entryDir(key)); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// placeFile puts a cached file at out: a hard link when it can be shared
// read-only, a copy when it must be executable or the file systems differ.
func placeFile(blob, out string, executable bool) error {
	tmp := out + ".egret-tmp"
	os.Remove(tmp)
	if executable || os.Link(blob, tmp) != nil {
		if err := copyFile(blob, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		mode := fs.FileMode(0o644)
		if executable {
			mode = 0o755
		}
		if err := os.Chmod(tmp, mode); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func readEntry(dir string) (Entry, error) {
	p := filepath.Join(dir, "meta.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", p, err)
	}
	if e.FormatVersion > cacheFormatVersion {
		return Entry{}, fmt.Errorf("%s: format_version %d is newer than this egret's %d", p, e.FormatVersion, cacheFormatVersion)
	}
	if fi, err := os.Stat(p); err == nil {
		e.LastUsed = fi.ModTime()
	}
	if _, err := os.Stat(filepath.Join(dir, "blob")); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func writeEntry(dir string, e Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "meta.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "meta.json"))
}

func treeSize(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// List returns the cache's entries, most recently used first.
func (f *Fetcher) List() ([]Entry, error) {
	des, err := os.ReadDir(filepath.Join(f.CacheDir, "entries"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, d := range des {
		e, err := readEntry(filepath.Join(f.CacheDir, "entries", d.Name()))
		if err != nil {
			continue // being written, or damaged: not listed, replaced on next use
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// Prune evicts least recently used entries until the cache holds at most max
// bytes. Entries in use (their lock held by a fetch) and the entries named in
// keep are never evicted. It returns the evicted entries.
func (f *Fetcher) Prune(max int64, keep ...string) ([]Entry, error) {
	entries, err := f.List()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range entries {
		total += e.Size()
	}
	var evicted []Entry
	for i := len(entries) - 1; i >= 0 && total > max; i-- {
		e := entries[i]
		if contains(keep, e.Key) {
			continue
		}
		l := flock.New(f.lockPath(e.Key))
		ok, err := l.TryLock()
		if err != nil || !ok {
			continue // in use
		}
		err = os.RemoveAll(f.entryDir(e.Key))
		l.Unlock()
		if err != nil {
			return evicted, fmt.Errorf("evict %s: %w", e.Key, err)
		}
		total -= e.Size()
		evicted = append(evicted, e)
	}
	// Leftovers of fetches killed half-way: removed once nobody holds their lock.
	if des, err := os.ReadDir(filepath.Join(f.CacheDir, "tmp")); err == nil {
		for _, d := range des {
			i := strings.LastIndex(d.Name(), "-")
			if i <= 0 {
				continue
			}
			l := flock.New(f.lockPath(d.Name()[:i]))
			if ok, err := l.TryLock(); err == nil && ok {
				os.RemoveAll(filepath.Join(f.CacheDir, "tmp", d.Name()))
				l.Unlock()
			}
		}
	}
	return evicted, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
