package statemgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LockFormatVersion is the format of the lock files egret writes.
const LockFormatVersion = 1

// Local is Heron's state tree in a directory: one regular file per node, written atomically
// (temporary file, fsync, rename), watched with inotify, locked by exclusive create.
type Local struct {
	root string

	mu       sync.Mutex
	closed   bool
	notify   *inotify // started by the first Watch or Lock
	watchers map[string]map[*localWatch]struct{}
	locks    map[*localLock]struct{}
}

type localWatch struct {
	ch     chan struct{}
	once   sync.Once
	cancel func() bool
}

// NewLocal opens (and creates) the tree under root.
func NewLocal(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("statemgr: empty local state root")
	}
	for _, k := range Kinds {
		if err := os.MkdirAll(filepath.Join(root, string(k)), 0o755); err != nil {
			return nil, fmt.Errorf("statemgr: create state tree: %w", err)
		}
	}
	return &Local{root: root, watchers: map[string]map[*localWatch]struct{}{}, locks: map[*localLock]struct{}{}}, nil
}

// Root is the tree's directory.
func (l *Local) Root() string { return l.root }

func (l *Local) path(kind Kind, topology string) (string, error) {
	n, err := nodeName(kind, topology)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, string(kind), n), nil
}

func (l *Local) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

// Get implements StateManager. An empty file reads as missing, as in Heron.
func (l *Local) Get(ctx context.Context, kind Kind, topology string) ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	p, err := l.path(kind, topology)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(b) == 0) {
		return nil, fmt.Errorf("statemgr: %s: %w", p, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("statemgr: %w", err)
	}
	return b, nil
}

// Set implements StateManager.
func (l *Local) Set(ctx context.Context, kind Kind, topology string, data []byte) error {
	return l.write(kind, topology, data, kind.Overwritable())
}

// Replace implements StateManager.
func (l *Local) Replace(ctx context.Context, kind Kind, topology string, data []byte) error {
	return l.write(kind, topology, data, true)
}

func (l *Local) write(kind Kind, topology string, data []byte, overwrite bool) error {
	if err := l.check(); err != nil {
		return err
	}
	p, err := l.path(kind, topology)
	if err != nil {
		return err
	}
	if err := writeAtomic(p, data, overwrite); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("statemgr: %s: %w", p, ErrExists)
		}
		return fmt.Errorf("statemgr: write %s: %w", p, err)
	}
	return nil
}

// writeAtomic writes a temporary file beside p, syncs it, and renames it over p (or links it
// to p when overwrite is false, which fails if p exists), then syncs the directory.
func writeAtomic(p string, data []byte, overwrite bool) error {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename or link this is a no-op or drops the extra name
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if overwrite {
		err = os.Rename(tmp, p)
	} else {
		err = os.Link(tmp, p)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Delete implements StateManager.
func (l *Local) Delete(ctx context.Context, kind Kind, topology string) error {
	if err := l.check(); err != nil {
		return err
	}
	p, err := l.path(kind, topology)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("statemgr: %w", err)
	}
	return nil
}

// List implements StateManager.
func (l *Local) List(ctx context.Context, kind Kind) ([]string, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if !kind.valid() {
		return nil, fmt.Errorf("statemgr: unknown kind %q", kind)
	}
	ents, err := os.ReadDir(filepath.Join(l.root, string(kind)))
	if err != nil {
		return nil, fmt.Errorf("statemgr: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// Watch implements StateManager with inotify on the kind's directory.
func (l *Local) Watch(ctx context.Context, kind Kind, topology string) (<-chan struct{}, error) {
	p, err := l.path(kind, topology)
	if err != nil {
		return nil, err
	}
	w, err := l.addWatcher(p)
	if err != nil {
		return nil, err
	}
	w.cancel = context.AfterFunc(ctx, func() { l.removeWatcher(p, w) })
	return w.ch, nil
}

func (l *Local) addWatcher(p string) (*localWatch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.notify == nil {
		n, err := newInotify(l.dispatch)
		if err != nil {
			return nil, fmt.Errorf("statemgr: watch: %w", err)
		}
		l.notify = n
	}
	if err := l.notify.add(filepath.Dir(p)); err != nil {
		return nil, fmt.Errorf("statemgr: watch %s: %w", p, err)
	}
	w := &localWatch{ch: make(chan struct{}, 1)}
	if l.watchers[p] == nil {
		l.watchers[p] = map[*localWatch]struct{}{}
	}
	l.watchers[p][w] = struct{}{}
	return w, nil
}

func (l *Local) removeWatcher(p string, w *localWatch) {
	l.mu.Lock()
	delete(l.watchers[p], w)
	if len(l.watchers[p]) == 0 {
		delete(l.watchers, p)
	}
	l.mu.Unlock()
	w.once.Do(func() { close(w.ch) })
}

// dispatch is called by the inotify reader for each event on a file path.
func (l *Local) dispatch(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.watchers[p] {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// lockInfo is the content of a lock file.
type lockInfo struct {
	FormatVersion int    `json:"format_version"`
	PID           int    `json:"pid"`
	Host          string `json:"host"`
}

type localLock struct {
	l    *Local
	path string
	once sync.Once
}

func (k *localLock) Unlock() error {
	var err error
	k.once.Do(func() {
		k.l.mu.Lock()
		delete(k.l.locks, k)
		k.l.mu.Unlock()
		if e := os.Remove(k.path); e != nil && !errors.Is(e, fs.ErrNotExist) {
			err = fmt.Errorf("statemgr: unlock: %w", e)
		}
	})
	return err
}

// Lock implements StateManager: the lock is a file created exclusively. A lock left by a
// process of this host that no longer exists is broken; otherwise Lock waits for the file's
// deletion (inotify) until ctx ends.
func (l *Local) Lock(ctx context.Context, topology, name string) (Unlocker, error) {
	p, err := l.path(Locks, lockNode(topology, name))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	info, _ := json.Marshal(lockInfo{FormatVersion: LockFormatVersion, PID: os.Getpid(), Host: host})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed, err := l.Watch(wctx, Locks, lockNode(topology, name))
	if err != nil {
		return nil, err
	}
	for {
		if err := l.check(); err != nil {
			return nil, err
		}
		err := writeAtomic(p, info, false)
		if err == nil {
			k := &localLock{l: l, path: p}
			l.mu.Lock()
			l.locks[k] = struct{}{}
			l.mu.Unlock()
			return k, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("statemgr: lock %s: %w", p, err)
		}
		if v := lockVersion(p); v > LockFormatVersion {
			return nil, fmt.Errorf("statemgr: lock %s has format_version %d; this egret reads format_version %d or older", p, v, LockFormatVersion)
		}
		if staleLock(p, host) {
			os.Remove(p)
			continue
		}
		// The holder's deletion wakes us; a timer covers a holder on another host whose
		// file we cannot judge.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("statemgr: lock %s: held by another owner: %w", p, ctx.Err())
		case <-changed:
		case <-time.After(2 * time.Second):
		}
	}
}

// lockVersion is the format_version of a lock file (0 for Heron's empty lock files).
func lockVersion(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	var li lockInfo
	if json.Unmarshal(b, &li) != nil {
		return 0
	}
	return li.FormatVersion
}

// staleLock reports whether the lock file names a process of this host that is gone.
func staleLock(p, host string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	var li lockInfo
	if json.Unmarshal(b, &li) != nil || li.FormatVersion > LockFormatVersion || li.Host != host || li.PID <= 0 {
		return false
	}
	err = syscall.Kill(li.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}

// Close implements StateManager: it releases this manager's locks and stops its watches.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	locks := l.locks
	l.locks = map[*localLock]struct{}{}
	watchers := l.watchers
	l.watchers = map[string]map[*localWatch]struct{}{}
	n := l.notify
	l.mu.Unlock()
	var errs []error
	for k := range locks {
		if err := k.Unlock(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ws := range watchers {
		for w := range ws {
			if w.cancel != nil {
				w.cancel()
			}
			w.once.Do(func() { close(w.ch) })
		}
	}
	if n != nil {
		n.close()
	}
	return errors.Join(errs...)
}

// inotify reads events for a set of directories and reports the affected file paths.
type inotify struct {
	f     *os.File
	mu    sync.Mutex
	dirs  map[int]string // watch descriptor -> directory
	byDir map[string]int
	done  chan struct{}
}

func newInotify(report func(path string)) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	n := &inotify{f: os.NewFile(uintptr(fd), "inotify"), dirs: map[int]string{}, byDir: map[string]int{}, done: make(chan struct{})}
	go n.read(report)
	return n, nil
}

func (n *inotify) add(dir string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.byDir[dir]; ok {
		return nil
	}
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	var wd int
	var werr error
	err = rc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), dir, unix.IN_CREATE|unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|
			unix.IN_MOVED_FROM|unix.IN_DELETE|unix.IN_MODIFY|unix.IN_ATTRIB)
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", dir, werr)
	}
	n.dirs[wd] = dir
	n.byDir[dir] = wd
	return nil
}

// read runs until the file is closed; the runtime poller wakes it on close.
func (n *inotify) read(report func(string)) {
	defer close(n.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := strings.TrimRight(string(nameBytes), "\x00")
			if name == "" || strings.HasPrefix(name, ".") {
				continue
			}
			n.mu.Lock()
			dir, ok := n.dirs[int(ev.Wd)]
			n.mu.Unlock()
			if ok {
				report(filepath.Join(dir, name))
			}
		}
	}
}

func (n *inotify) close() {
	n.f.Close()
	<-n.done
}
