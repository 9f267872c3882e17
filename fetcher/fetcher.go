// Package fetcher downloads artifacts (the Heron core release, topology
// packages, egret itself), verifies their checksums, keeps them in a
// content-addressed cache shared by every sandbox on a host, and unpacks
// archives safely.
//
// Downloading is go-getter's (http, https, file, s3, gcs, ...); extraction is
// egret's own (see Extract), because go-getter's decompressors leave partial
// trees, keep setuid and world-write bits and truncate oversized files.
// fetcher knows nothing of Heron.
package fetcher

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Request is one artifact to put into a directory. The fields follow Mesos'
// CommandInfo.URI: extract, executable, output_file, cache.
type Request struct {
	URI string
	// Checksum is "TYPE:HEX" (sha256, sha512, sha1, md5). A "checksum" query
	// parameter in URI is taken too; when both are given they must agree.
	Checksum string
	// Dest is the directory the artifact goes into; it is created if missing.
	Dest string
	// Extract unpacks an archive into Dest (entries are placed directly in Dest).
	// A file that is not an archive is placed as it is.
	Extract bool
	// Executable places the file as it is with mode 0755; as in Mesos, it
	// overrides Extract.
	Executable bool
	// OutputFile names the file in Dest (default: the last element of the URI's
	// path); a name leaving Dest (absolute, "..") is refused.
	OutputFile string
	// Cache keeps the artifact in the host's cache and serves later requests from it.
	Cache bool
}

// Result says what a Fetch did.
type Result struct {
	Path string // the file placed, or Dest for an extracted archive
	// Digest is "TYPE:HEX" of the downloaded artifact (the given checksum's type,
	// else sha256); empty for an uncached fetch with no checksum, where nothing
	// needs it.
	Digest   string
	Bytes    int64 // size of the downloaded artifact
	CacheHit bool  // served from the cache: no download, no extraction
}

// Progress reports the bytes of one step.
type Progress struct {
	URI   string
	Step  string // "download", "extract", "link"
	Done  int64
	Total int64 // -1 when unknown
}

// Fetcher fetches artifacts. The zero value is not usable; set CacheDir (see
// DefaultCacheDir) or leave it empty to fetch without a cache.
type Fetcher struct {
	CacheDir      string
	MaxCacheBytes int64  // the cache's size bound; 0 means DefaultMaxCacheBytes
	Limits        Limits // extraction bounds; zero means DefaultLimits
	// Progress, if set, is called as bytes arrive; it must be cheap.
	Progress func(Progress)
	// AllowVCS enables git and hg sources, refused by default (their history of
	// command-injection CVEs is long).
	AllowVCS bool
	// Deadline bounds one Fetch, retries included; 0 means 10 minutes.
	Deadline time.Duration
	// RetryInitial and RetryMax bound the backoff between attempts on transient
	// failures; 0 means 200ms and 5s.
	RetryInitial, RetryMax time.Duration
}

// DefaultMaxCacheBytes is the cache bound when none is configured: 10 GiB.
const DefaultMaxCacheBytes = 10 << 30

// DefaultCacheDir is $EGRET_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/egret.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("EGRET_CACHE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "egret"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: set EGRET_CACHE_DIR: %w", err)
	}
	return filepath.Join(home, ".cache", "egret"), nil
}

// Error is a failed fetch: the URI, and whether trying again may help.
type Error struct {
	URI       string
	Transient bool
	Err       error
}

func (e *Error) Error() string { return fmt.Sprintf("fetch %s: %v", e.URI, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ChecksumError is a downloaded artifact whose digest is not the one expected.
type ChecksumError struct {
	Type      string
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch: want %s:%s, got %s:%s", e.Type, e.Want, e.Type, e.Got)
}

// checksum is a parsed "TYPE:HEX".
type checksum struct {
	typ string
	hex string
}

func (c checksum) String() string {
	if c.typ == "" {
		return ""
	}
	return c.typ + ":" + c.hex
}

func newHash(typ string) hash.Hash {
	switch typ {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "sha1":
		return sha1.New()
	case "md5":
		return md5.New()
	}
	return nil
}

func parseChecksum(s string) (checksum, error) {
	if s == "" {
		return checksum{}, nil
	}
	typ, hx, ok := strings.Cut(s, ":")
	if !ok {
		return checksum{}, fmt.Errorf("checksum %q: want TYPE:HEX (sha256:...)", s)
	}
	typ = strings.ToLower(typ)
	h := newHash(typ)
	if h == nil {
		return checksum{}, fmt.Errorf("checksum %q: unknown type %q (sha256, sha512, sha1, md5)", s, typ)
	}
	hx = strings.ToLower(hx)
	if b, err := hex.DecodeString(hx); err != nil || len(b) != h.Size() {
		return checksum{}, fmt.Errorf("checksum %q: not %d hexadecimal bytes", s, h.Size())
	}
	return checksum{typ, hx}, nil
}

// source is a request's URI taken apart.
type source struct {
	uri  string // as given, for messages
	get  string // what go-getter is given (checksum parameter removed)
	sum  checksum
	name string // last element of the path
	url  *url.URL
}

var vcsPrefixes = []string{"git::", "hg::", "git@", "git+", "hg+"}

func (f *Fetcher) parse(req Request) (source, error) {
	s := source{uri: req.URI}
	raw := req.URI
	if raw == "" {
		return s, errors.New("empty URI")
	}
	forced := ""
	if i := strings.Index(raw, "::"); i > 0 && !strings.Contains(raw[:i], "/") {
		forced = raw[:i]
	}
	lower := strings.ToLower(raw)
	if !f.AllowVCS {
		for _, p := range vcsPrefixes {
			if strings.HasPrefix(lower, p) {
				return s, errors.New("git and hg sources are disabled (enable them in the configuration)")
			}
		}
		if forced == "git" || forced == "hg" || strings.HasPrefix(lower, "ssh://") || strings.HasSuffix(strings.SplitN(lower, "?", 2)[0], ".git") {
			return s, errors.New("git and hg sources are disabled (enable them in the configuration)")
		}
	}
	if filepath.IsAbs(raw) {
		raw = "file://" + raw
	}
	u, err := url.Parse(strings.TrimPrefix(raw, forced+"::"))
	if err != nil {
		return s, fmt.Errorf("malformed URI: %w", err)
	}
	if u.Scheme == "" {
		return s, errors.New("the URI has no scheme (http://, https://, file://, s3::, ...)")
	}
	q := u.Query()
	inURI := q.Get("checksum")
	q.Del("checksum")
	u.RawQuery = q.Encode()
	s.url = u
	if inURI != "" && req.Checksum != "" && !strings.EqualFold(inURI, req.Checksum) {
		return s, fmt.Errorf("two checksums given: %s in the URI, %s beside it", inURI, req.Checksum)
	}
	cs := req.Checksum
	if cs == "" {
		cs = inURI
	}
	if s.sum, err = parseChecksum(cs); err != nil {
		return s, err
	}
	s.get = u.String()
	if forced != "" {
		s.get = forced + "::" + s.get
	}
	s.name = path.Base(u.Path)
	if s.name == "." || s.name == "/" || s.name == "" {
		s.name = "download"
	}
	return s, nil
}

// Fetch puts one artifact into req.Dest. On failure nothing is left in Dest.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (Result, error) {
	src, err := f.parse(req)
	if err != nil {
		return Result{}, &Error{URI: req.URI, Err: err}
	}
	if req.Dest == "" {
		return Result{}, &Error{URI: req.URI, Err: errors.New("no destination directory")}
	}
	if req.OutputFile != "" && !filepath.IsLocal(req.OutputFile) {
		return Result{}, &Error{URI: req.URI, Err: fmt.Errorf("output file %q leaves the destination directory", req.OutputFile)}
	}
	deadline := f.Deadline
	if deadline <= 0 {
		deadline = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if err := os.MkdirAll(req.Dest, 0o755); err != nil {
		return Result{}, &Error{URI: req.URI, Err: err}
	}
	var res Result
	if req.Cache && f.CacheDir != "" {
		res, err = f.fetchCached(ctx, req, src)
	} else {
		res, err = f.fetchDirect(ctx, req, src)
	}
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return Result{}, err
		}
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%w (deadline %s)", err, deadline)
		}
		return Result{}, &Error{URI: req.URI, Err: err}
	}
	return res, nil
}

func (f *Fetcher) limits() Limits {
	if f.Limits == (Limits{}) {
		return DefaultLimits
	}
	return f.Limits
}

// fetchDirect downloads into a temporary directory inside Dest and places it.
func (f *Fetcher) fetchDirect(ctx context.Context, req Request, src source) (Result, error) {
	tmp, err := os.MkdirTemp(req.Dest, ".egret-fetch-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	blob := filepath.Join(tmp, src.name)
	dl, err := f.download(ctx, src, blob, false)
	if err != nil {
		return Result{}, err
	}
	res := Result{Digest: dl.digest, Bytes: dl.size}
	if format := FormatOf(src.name); extracts(req) && format != FormatNone {
		tree := filepath.Join(tmp, "tree")
		f.report(src.uri, "extract", 0, -1)
		if err := extract(ctx, blob, tree, format, f.limits(), false); err != nil {
			return Result{}, err
		}
		if err := placeTree(tree, req.Dest, false); err != nil {
			return Result{}, err
		}
		res.Path = req.Dest
		return res, nil
	}
	out := outputPath(req, src)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Result{}, err
	}
	mode := fs.FileMode(0o644)
	if req.Executable {
		mode = 0o755
	}
	if err := os.Chmod(blob, mode); err != nil {
		return Result{}, err
	}
	if err := os.Rename(blob, out); err != nil {
		return Result{}, err
	}
	res.Path = out
	return res, nil
}

// extracts tells whether a request unpacks its archive: as in Mesos, an
// executable file is placed as it is whatever extract says.
func extracts(req Request) bool { return req.Extract && !req.Executable }

// outputPath is where a non-extracted file goes; parse has checked that
// OutputFile stays inside Dest.
func outputPath(req Request, src source) string {
	name := req.OutputFile
	if name == "" {
		name = src.name
	}
	return filepath.Join(req.Dest, name)
}

func (f *Fetcher) report(uri, step string, done, total int64) {
	if f.Progress != nil {
		f.Progress(Progress{URI: uri, Step: step, Done: done, Total: total})
	}
}

// placeTree moves (or, from the cache, hard-links) the entries of tree into
// dest, replacing entries of the same name. From the cache, the tree is first
// linked into a staging directory inside dest, so dest never holds a partial copy.
func placeTree(tree, dest string, fromCache bool) error {
	staging := tree
	if fromCache {
		tmp, err := os.MkdirTemp(dest, ".egret-link-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		staging = filepath.Join(tmp, "tree")
		if err := linkTree(tree, staging); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from := filepath.Join(staging, e.Name())
		to := filepath.Join(dest, e.Name())
		if _, err := os.Lstat(to); err == nil {
			old, err := os.MkdirTemp(dest, ".egret-old-")
			if err != nil {
				return err
			}
			if err := os.Rename(to, filepath.Join(old, e.Name())); err != nil {
				os.RemoveAll(old)
				return err
			}
			err = os.Rename(from, to)
			os.RemoveAll(old)
			if err != nil {
				return err
			}
			continue
		}
		if err := os.Rename(from, to); err != nil {
			return err
		}
	}
	return nil
}

// linkTree recreates the directory tree src at dst (which must not exist) with
// files hard-linked, copying where the file systems differ.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			if err := os.Link(p, target); err == nil {
				return nil
			}
			return copyFile(p, target)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
