package fetcher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	getter "github.com/hashicorp/go-getter"
)

// HTTPError is an HTTP answer other than success, with the start of its body.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

// answerRecorder is the HTTP transport given to go-getter: it remembers the last
// failed answer, so errors carry the status and body rather than go-getter's text.
type answerRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	last *HTTPError
}

func (a *answerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodHead {
		return resp, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusPartialContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		a.mu.Lock()
		a.last = &HTTPError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
		a.mu.Unlock()
	}
	return resp, nil
}

func (a *answerRecorder) answer() *HTTPError {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// transport is shared by all downloads: connections are reused across attempts.
var transport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:          16,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	ReadBufferSize:        1 << 20,
	WriteBufferSize:       64 << 10,
}

// hashingTracker is go-getter's progress listener: it reports bytes and hashes
// the body as it streams, so a download is read once. Hashing runs on its own
// goroutine (chunks handed over by channel), so the digest costs no time on
// the path from socket to file.
type hashingTracker struct {
	f     *Fetcher
	uri   string
	h     hash.Hash
	n     int64
	total int64
	used  bool
	// chunks carries copies of the body to the hashing goroutine; done is
	// closed when it has hashed the last one.
	chunks chan []byte
	done   chan struct{}
	pool   sync.Pool
}

func (t *hashingTracker) TrackProgress(_ string, current, total int64, stream io.ReadCloser) io.ReadCloser {
	t.finish()            // a second body (never with DoNotCheckHeadFirst) restarts the count
	t.used = current == 0 // a resumed range would hash only a part
	t.total = total
	t.n = 0
	if t.h == nil {
		return &trackedBody{t: t, rc: stream} // nothing to verify or record: no hashing
	}
	t.h.Reset()
	t.chunks = make(chan []byte, 64)
	t.done = make(chan struct{})
	go func(chunks <-chan []byte, done chan<- struct{}) {
		defer close(done)
		for c := range chunks {
			t.h.Write(c)
			t.pool.Put(c[:0]) //nolint:staticcheck // slices are what the pool holds
		}
	}(t.chunks, t.done)
	return &trackedBody{t: t, rc: stream}
}

// finish waits until every byte read so far is hashed; safe to call twice.
func (t *hashingTracker) finish() {
	if t.chunks != nil {
		close(t.chunks)
		<-t.done
		t.chunks = nil
	}
}

type trackedBody struct {
	t  *hashingTracker
	rc io.ReadCloser
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		if b.t.chunks != nil {
			c, _ := b.t.pool.Get().([]byte)
			if cap(c) < n {
				c = make([]byte, 0, max(n, 64<<10))
			}
			b.t.chunks <- append(c[:0], p[:n]...)
		}
		b.t.n += int64(n)
		b.t.f.report(b.t.uri, "download", b.t.n, b.t.total)
	}
	return n, err
}

func (b *trackedBody) Close() error { return b.rc.Close() }

// downloaded is a file on disk and its digest.
type downloaded struct {
	digest string
	size   int64
}

// download fetches src into the file dst (which must not exist), retrying
// transient failures with backoff until the context's deadline, and verifies
// the checksum. On failure dst does not exist.
// With digest false and no checksum to verify, nothing is hashed (the result's
// digest is empty): a download that is neither verified nor cached costs no
// more than curl's.
func (f *Fetcher) download(ctx context.Context, src source, dst string, digest bool) (downloaded, error) {
	backoff, max := f.RetryInitial, f.RetryMax
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	if max <= 0 {
		max = 5 * time.Second
	}
	for attempt := 1; ; attempt++ {
		dl, err := f.downloadOnce(ctx, src, dst, digest)
		if err == nil {
			return dl, nil
		}
		os.Remove(dst)
		if !transient(err) || ctx.Err() != nil {
			if ctx.Err() != nil && transient(err) {
				return downloaded{}, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			return downloaded{}, err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return downloaded{}, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		case <-t.C:
		}
		backoff = min(backoff*2, max)
	}
}

func (f *Fetcher) downloadOnce(ctx context.Context, src source, dst string, digest bool) (downloaded, error) {
	typ := src.sum.typ
	if typ == "" {
		typ = "sha256"
	}
	rec := &answerRecorder{base: transport}
	hc := &http.Client{Transport: rec}
	tracker := &hashingTracker{f: f, uri: src.uri, total: -1}
	if digest || src.sum.typ != "" {
		tracker.h = newHash(typ)
	}
	httpGetter := &getter.HttpGetter{Client: hc, DoNotCheckHeadFirst: true, XTerraformGetDisabled: true}
	getters := map[string]getter.Getter{
		"http":  httpGetter,
		"https": httpGetter,
		"file":  &getter.FileGetter{Copy: true},
		"s3":    new(getter.S3Getter),
		"gcs":   new(getter.GCSGetter),
	}
	if f.AllowVCS {
		getters["git"] = new(getter.GitGetter)
		getters["hg"] = new(getter.HgGetter)
	}
	c := &getter.Client{
		Ctx:              ctx,
		Src:              src.get,
		Dst:              dst,
		Mode:             getter.ClientModeFile,
		Getters:          getters,
		Decompressors:    map[string]getter.Decompressor{}, // egret extracts with its own code
		ProgressListener: tracker,
		DisableSymlinks:  true,
	}
	f.report(src.uri, "download", 0, -1)
	err := c.Get()
	tracker.finish()
	if err != nil {
		if a := rec.answer(); a != nil {
			return downloaded{}, a
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) {
			return downloaded{}, fmt.Errorf("no such file: %w", err)
		}
		return downloaded{}, err
	}
	if a := rec.answer(); a != nil {
		return downloaded{}, a
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return downloaded{}, err
	}
	if !fi.Mode().IsRegular() {
		return downloaded{}, fmt.Errorf("%s is not a regular file", src.uri)
	}
	if tracker.h == nil {
		return downloaded{size: fi.Size()}, nil
	}
	h := tracker.h
	if !tracker.used || tracker.n != fi.Size() {
		// Not streamed through the tracker (a file:// copy, S3): hash the file.
		h = newHash(typ)
		if err := hashFile(dst, h); err != nil {
			return downloaded{}, err
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if src.sum.typ != "" && got != src.sum.hex {
		return downloaded{}, &ChecksumError{Type: typ, Want: src.sum.hex, Got: got}
	}
	return downloaded{digest: typ + ":" + got, size: fi.Size()}, nil
}

func hashFile(p string, h hash.Hash) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(h, f, make([]byte, 1<<20))
	return err
}

// transient tells failures worth another attempt (connection trouble, 5xx,
// 408, 429, a body cut short) from permanent ones (404, 403, checksum).
func transient(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500 || he.Status == http.StatusRequestTimeout || he.Status == http.StatusTooManyRequests
	}
	var ce *ChecksumError
	if errors.As(err, &ce) {
		return false
	}
	var le *LimitError
	if errors.As(err, &le) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrShortWrite) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A local file system error (disk full, read-only, permission) is not the
	// network's: retrying cannot help. *fs.PathError has Timeout, so without
	// this a full disk was retried as a net.Error until the deadline and then
	// reported as "context deadline exceeded" (found by make chaos).
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}
