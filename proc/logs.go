package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// logSink collects one process's output across its runs: each stream goes to
// its own size-rotated file, and the last lines of both are kept in memory.
type logSink struct {
	mu      sync.Mutex
	streams [2]*rotFile // stdout, stderr; nil: memory only
	lines   []string    // ring of the last LastLines complete lines
	next    int
	partial [2][]byte
	dropped int64 // bytes not written because of write errors (disk full)
}

func newLogSink(stdout, stderr string, maxSize int64, maxFiles int) *logSink {
	ls := &logSink{}
	for i, p := range []string{stdout, stderr} {
		if p != "" {
			ls.streams[i] = &rotFile{path: p, max: maxSize, keep: maxFiles}
		}
	}
	if stdout != "" && filepath.Clean(stdout) == filepath.Clean(stderr) {
		ls.streams[1] = ls.streams[0] // one file for both: one size, one rotation
	}
	return ls
}

// ensure creates the log files, so that they exist from the first start
// (readers such as Mesos's sandbox browser expect them).
func (ls *logSink) ensure() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, f := range ls.streams {
		if f != nil && f.f == nil {
			_ = f.open()
		}
	}
}

func (ls *logSink) write(stream int, p []byte) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if f := ls.streams[stream]; f != nil {
		if err := f.write(p); err != nil {
			ls.dropped += int64(len(p)) // never block the child on a full disk
		}
	}
	buf := append(ls.partial[stream], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		ls.addLine(string(buf[:i]))
		buf = buf[i+1:]
	}
	if len(buf) > 4096 { // a line without end: keep it bounded
		ls.addLine(string(buf))
		buf = nil
	}
	ls.partial[stream] = append(ls.partial[stream][:0], buf...)
}

func (ls *logSink) addLine(l string) {
	if len(ls.lines) < LastLines {
		ls.lines = append(ls.lines, l)
		return
	}
	ls.lines[ls.next] = l
	ls.next = (ls.next + 1) % LastLines
}

// last returns the kept lines, oldest first, with any unterminated ones.
func (ls *logSink) last() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]string, 0, len(ls.lines)+2)
	out = append(out, ls.lines[ls.next:]...)
	out = append(out, ls.lines[:ls.next]...)
	for _, p := range ls.partial {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	if len(out) > LastLines {
		out = out[len(out)-LastLines:]
	}
	return out
}

func (ls *logSink) close() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, f := range ls.streams {
		if f != nil {
			f.close()
		}
	}
}

// rotFile is a log file rotated by size: at max bytes, file.N-1 becomes
// file.N (the oldest beyond keep is removed), file becomes file.1, and a new
// file is started. Only the supervisor writes it, so rename-and-reopen is safe.
type rotFile struct {
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func (r *rotFile) write(p []byte) error {
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	}
	for len(p) > 0 {
		room := r.max - r.size
		if room <= 0 {
			if err := r.rotate(); err != nil {
				return err
			}
			room = r.max
		}
		n := min(int64(len(p)), room)
		w, err := r.f.Write(p[:n])
		r.size += int64(w)
		if err != nil {
			return fmt.Errorf("write %s: %w", r.path, err)
		}
		p = p[n:]
	}
	return nil
}

func (r *rotFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotFile) rotate() error {
	r.close()
	_ = os.Remove(r.path + "." + strconv.Itoa(r.keep))
	for i := r.keep - 1; i >= 1; i-- {
		_ = os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
	}
	if r.keep > 0 {
		if err := os.Rename(r.path, r.path+".1"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate %s: %w", r.path, err)
		}
	} else {
		_ = os.Remove(r.path)
	}
	return r.open()
}

func (r *rotFile) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pump copies one pipe into the sink until EOF or until the file's read
// deadline passes. It holds a buffer only while data is there to read, so an
// idle child costs a parked goroutine and nothing more.
func pump(f *os.File, ls *logSink, stream int) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			b := bufPool.Get().(*[]byte)
			defer bufPool.Put(b)
			n, rerr = unix.Read(int(fd), *b)
			if rerr == unix.EAGAIN {
				return false
			}
			if n > 0 {
				ls.write(stream, (*b)[:n])
			}
			return true
		})
		if err != nil || (rerr != nil && rerr != unix.EINTR) || (n == 0 && rerr == nil) {
			return
		}
	}
}
