package statemgr

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"egret/config"
)

// ZKOptions configure the ZooKeeper state manager.
type ZKOptions struct {
	// Servers are host:port addresses (Heron's heron.statemgr.connection.string, split on ',').
	Servers []string
	// Root is the tree's root path, e.g. /heron.
	Root string
	// SessionTimeout is the ZooKeeper session timeout (default 30 s).
	SessionTimeout time.Duration
	// ConnectTimeout bounds the wait for a connection, at Open and for each operation whose
	// context has no deadline (default 30 s).
	ConnectTimeout time.Duration
	// Digest, "user:password", authenticates the session with the digest scheme; nodes egret
	// creates then carry an ACL giving that identity every permission and the world read.
	Digest string
	// InitTree creates the root and the nine directories if they are missing.
	InitTree bool
	// SchedulersPersistent makes schedulers/ nodes persistent (heron.scheduler.is.service false).
	SchedulersPersistent bool
}

// KeyZKDigest is egret's key for ZooKeeper digest authentication ("user:password").
const KeyZKDigest = "heron.statemgr.zookeeper.auth.digest"

// ZKOptionsFromConfig reads the options from statemgr.yaml keys.
func ZKOptionsFromConfig(cfg *config.Config) (ZKOptions, error) {
	var errs []error
	o := ZKOptions{Root: cfg.String(config.KeyStateRoot), Digest: cfg.String(KeyZKDigest)}
	for _, s := range strings.Split(cfg.String(config.KeyStateConnection), ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Servers = append(o.Servers, s)
		}
	}
	if len(o.Servers) == 0 {
		errs = append(errs, fmt.Errorf("%s is empty (%s)", config.KeyStateConnection, cfg.Source(config.KeyStateConnection)))
	}
	var err error
	if o.SessionTimeout, err = cfg.Duration(config.KeyZKSessionTimeout, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if o.ConnectTimeout, err = cfg.Duration(config.KeyZKConnTimeout, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if o.InitTree, err = cfg.Bool(config.KeyZKInitTree, true); err != nil {
		errs = append(errs, err)
	}
	svc, err := cfg.Bool(config.KeySchedulerService, true)
	if err != nil {
		errs = append(errs, err)
	}
	o.SchedulersPersistent = !svc
	if len(errs) > 0 {
		return o, fmt.Errorf("statemgr: %w", errors.Join(errs...))
	}
	return o, nil
}

// ZK is Heron's state tree in ZooKeeper. It survives ZooKeeper trouble: requests wait for a
// connection until their context (or ConnectTimeout) ends; watches are re-armed after a
// reconnection or a new session; ephemeral nodes it owns are re-created in a new session.
type ZK struct {
	opts ZKOptions
	conn *zk.Conn
	acl  []zk.ACL

	mu         sync.Mutex
	closed     bool
	ready      chan struct{} // closed while the session is usable; replaced on loss
	session    int64
	ephemerals map[string][]byte // path -> data of the ephemeral nodes this manager owns
	locks      map[*zkLock]struct{}
	stop       chan struct{}
	wg         sync.WaitGroup
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// NewZK connects to ZooKeeper and waits for a session until ctx ends or ConnectTimeout passes.
func NewZK(ctx context.Context, o ZKOptions) (*ZK, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("statemgr: no ZooKeeper servers given")
	}
	if o.Root == "" || !strings.HasPrefix(o.Root, "/") {
		return nil, fmt.Errorf("statemgr: ZooKeeper root %q must be an absolute path", o.Root)
	}
	o.Root = path.Clean(o.Root)
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	conn, events, err := zk.Connect(o.Servers, o.SessionTimeout, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		return nil, fmt.Errorf("statemgr: zookeeper %s: %w", strings.Join(o.Servers, ","), err)
	}
	z := &ZK{opts: o, conn: conn, ready: make(chan struct{}), ephemerals: map[string][]byte{},
		locks: map[*zkLock]struct{}{}, stop: make(chan struct{})}
	z.acl = zk.WorldACL(zk.PermAll)
	if o.Digest != "" {
		user, pass, ok := strings.Cut(o.Digest, ":")
		if !ok || user == "" {
			conn.Close()
			return nil, errors.New("statemgr: ZooKeeper digest must be user:password")
		}
		if err := conn.AddAuth("digest", []byte(o.Digest)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("statemgr: zookeeper digest auth: %w", err)
		}
		z.acl = append(zk.DigestACL(zk.PermAll, user, pass), zk.WorldACL(zk.PermRead)...)
	}
	z.wg.Add(1)
	go z.events(events)

	wctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := z.waitReady(wctx); err != nil {
		z.Close()
		return nil, err
	}
	if o.InitTree {
		if err := z.initTree(wctx); err != nil {
			z.Close()
			return nil, err
		}
	}
	return z, nil
}

// events follows the session: it marks the manager ready when a session is established and
// re-creates owned ephemeral nodes when the session is a new one.
func (z *ZK) events(events <-chan zk.Event) {
	defer z.wg.Done()
	for ev := range events {
		if ev.Type != zk.EventSession {
			continue
		}
		switch ev.State {
		case zk.StateHasSession:
			sid := z.conn.SessionID()
			z.mu.Lock()
			renewed := z.session != 0 && z.session != sid
			z.session = sid
			select {
			case <-z.ready:
			default:
				close(z.ready)
			}
			z.mu.Unlock()
			if renewed {
				z.wg.Add(1)
				go func() {
					defer z.wg.Done()
					z.recreateEphemerals()
				}()
			}
		case zk.StateDisconnected, zk.StateExpired, zk.StateConnecting:
			z.mu.Lock()
			select {
			case <-z.ready:
				z.ready = make(chan struct{})
			default:
			}
			z.mu.Unlock()
		}
	}
}

func (z *ZK) recreateEphemerals() {
	z.mu.Lock()
	owned := make(map[string][]byte, len(z.ephemerals))
	for p, d := range z.ephemerals {
		owned[p] = d
	}
	z.mu.Unlock()
	for p, d := range owned {
		ctx, cancel := context.WithTimeout(context.Background(), z.opts.ConnectTimeout)
		err := z.do(ctx, "re-create "+p, func() error { return z.createEphemeral(p, d) })
		cancel()
		_ = err // a later new session tries again; callers see the node missing meanwhile
	}
}

// createEphemeral creates p in this session, replacing a node left by an older session.
func (z *ZK) createEphemeral(p string, data []byte) error {
	for range 3 {
		_, err := z.conn.Create(p, data, zk.FlagEphemeral, z.acl)
		if !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
		_, st, err := z.conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return err
		}
		if st.EphemeralOwner == z.conn.SessionID() {
			_, err = z.conn.Set(p, data, -1)
			return err
		}
		if err := z.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
	}
	return fmt.Errorf("create %s: %w", p, zk.ErrNodeExists)
}

func (z *ZK) readyChan() (chan struct{}, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.closed {
		return nil, ErrClosed
	}
	return z.ready, nil
}

func (z *ZK) waitReady(ctx context.Context) error {
	ready, err := z.readyChan()
	if err != nil {
		return err
	}
	if z.conn.State() == zk.StateHasSession {
		return nil // also covers a session event the client dropped from its full channel
	}
	select {
	case <-ready:
		return nil
	case <-z.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("statemgr: zookeeper %s: no session: %w (%w)", strings.Join(z.opts.Servers, ","), ErrUnavailable, ctx.Err())
	}
}

// transient reports errors after which an operation is retried once a session is back.
func transient(err error) bool {
	return errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrConnectionClosed) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved)
}

// do runs op when a session is usable, retrying after connection trouble, until ctx ends
// (ConnectTimeout when ctx has no deadline).
func (z *ZK) do(ctx context.Context, what string, op func() error) error {
	_, err := doV(z, ctx, what, func() (struct{}, error) { return struct{}{}, op() })
	return err
}

// doV is do for an operation with a result. The operation runs on its own goroutine so that
// a request stuck in the client ends with ctx; the client fails it at the latest on Close.
func doV[T any](z *ZK, ctx context.Context, what string, op func() (T, error)) (T, error) {
	var zero T
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, z.opts.ConnectTimeout)
		defer cancel()
	}
	type result struct {
		v   T
		err error
	}
	for {
		if err := z.waitReady(ctx); err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		done := make(chan result, 1)
		go func() {
			v, err := op()
			done <- result{v, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			return zero, fmt.Errorf("statemgr: %s: zookeeper %s: %w (%w)", what, strings.Join(z.opts.Servers, ","), ErrUnavailable, ctx.Err())
		}
		if r.err == nil || !transient(r.err) {
			return r.v, r.err
		}
	}
}

func (z *ZK) initTree(ctx context.Context) error {
	paths := []string{}
	parts := strings.Split(strings.TrimPrefix(z.opts.Root, "/"), "/")
	for i := range parts {
		if parts[i] != "" {
			paths = append(paths, "/"+strings.Join(parts[:i+1], "/"))
		}
	}
	for _, k := range Kinds {
		paths = append(paths, path.Join(z.opts.Root, string(k)))
	}
	for _, p := range paths {
		err := z.do(ctx, "create "+p, func() error {
			if ok, _, err := z.conn.Exists(p); err != nil || ok {
				return err // present, perhaps under an ACL we may not create in
			}
			_, err := z.conn.Create(p, nil, 0, z.acl)
			if errors.Is(err, zk.ErrNodeExists) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("statemgr: initialize tree: %w", err)
		}
	}
	return nil
}

func (z *ZK) path(kind Kind, topology string) (string, error) {
	n, err := nodeName(kind, topology)
	if err != nil {
		return "", err
	}
	return path.Join(z.opts.Root, string(kind), n), nil
}

func (z *ZK) ephemeral(kind Kind) bool {
	if kind == Schedulers && z.opts.SchedulersPersistent {
		return false
	}
	return kind.Ephemeral()
}

func wrapZK(p string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zk.ErrNoNode):
		return fmt.Errorf("statemgr: %s: %w", p, ErrNotFound)
	case errors.Is(err, zk.ErrNodeExists):
		return fmt.Errorf("statemgr: %s: %w", p, ErrExists)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return err
	}
	return fmt.Errorf("statemgr: %s: %w", p, err)
}

// Get implements StateManager.
func (z *ZK) Get(ctx context.Context, kind Kind, topology string) ([]byte, error) {
	p, err := z.path(kind, topology)
	if err != nil {
		return nil, err
	}
	data, err := doV(z, ctx, "get "+p, func() ([]byte, error) {
		d, _, err := z.conn.Get(p)
		return d, err
	})
	if err == nil && len(data) == 0 {
		err = zk.ErrNoNode
	}
	return data, wrapZK(p, err)
}

// Set implements StateManager.
func (z *ZK) Set(ctx context.Context, kind Kind, topology string, data []byte) error {
	return z.write(ctx, kind, topology, data, kind.Overwritable())
}

// Replace implements StateManager.
func (z *ZK) Replace(ctx context.Context, kind Kind, topology string, data []byte) error {
	return z.write(ctx, kind, topology, data, true)
}

func (z *ZK) write(ctx context.Context, kind Kind, topology string, data []byte, overwrite bool) error {
	p, err := z.path(kind, topology)
	if err != nil {
		return err
	}
	if z.ephemeral(kind) {
		err := z.do(ctx, "create "+p, func() error { return z.createEphemeral(p, data) })
		if err == nil {
			z.mu.Lock()
			z.ephemerals[p] = append([]byte(nil), data...)
			z.mu.Unlock()
		}
		return wrapZK(p, err)
	}
	return wrapZK(p, z.do(ctx, "write "+p, func() error {
		_, err := z.conn.Create(p, data, 0, z.acl)
		if !errors.Is(err, zk.ErrNodeExists) || !overwrite {
			return err
		}
		_, err = z.conn.Set(p, data, -1)
		return err
	}))
}

// Delete implements StateManager.
func (z *ZK) Delete(ctx context.Context, kind Kind, topology string) error {
	p, err := z.path(kind, topology)
	if err != nil {
		return err
	}
	z.mu.Lock()
	delete(z.ephemerals, p)
	z.mu.Unlock()
	return wrapZK(p, z.do(ctx, "delete "+p, func() error {
		err := z.conn.Delete(p, -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	}))
}

// List implements StateManager.
func (z *ZK) List(ctx context.Context, kind Kind) ([]string, error) {
	if !kind.valid() {
		return nil, fmt.Errorf("statemgr: unknown kind %q", kind)
	}
	p := path.Join(z.opts.Root, string(kind))
	names, err := doV(z, ctx, "list "+p, func() ([]string, error) {
		n, _, err := z.conn.Children(p)
		return n, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	sort.Strings(names)
	return names, wrapZK(p, err)
}

// Watch implements StateManager with ZooKeeper watches, re-armed after every firing, every
// reconnection and every new session.
func (z *ZK) Watch(ctx context.Context, kind Kind, topology string) (<-chan struct{}, error) {
	p, err := z.path(kind, topology)
	if err != nil {
		return nil, err
	}
	if _, err := z.readyChan(); err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	armed := make(chan error, 1)
	z.wg.Add(1)
	go func() {
		defer z.wg.Done()
		defer close(out)
		z.watchLoop(ctx, p, out, armed)
	}()
	select {
	case err := <-armed:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return out, nil
}

func (z *ZK) watchLoop(ctx context.Context, p string, out chan struct{}, armed chan error) {
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	// Each arming reads the node's state; a state different from the last one seen is a
	// change, so changes between a firing and the re-arm, or while the session was lost, are
	// not missed.
	type seen struct {
		exists bool
		mzxid  int64
	}
	type armedWatch struct {
		ch    <-chan zk.Event
		state seen
	}
	var last seen
	first := true
	for {
		aw, err := doV(z, ctx, "watch "+p, func() (armedWatch, error) {
			_, st, ch, err := z.conn.GetW(p)
			if errors.Is(err, zk.ErrNoNode) {
				// Absent: an exists-watch fires on creation.
				var ok bool
				ok, st, ch, err = z.conn.ExistsW(p)
				if err == nil && ok {
					_, st, ch, err = z.conn.GetW(p)
				} else if err == nil {
					return armedWatch{ch: ch}, nil
				}
			}
			if err != nil {
				return armedWatch{}, err
			}
			return armedWatch{ch: ch, state: seen{true, st.Mzxid}}, nil
		})
		if first {
			first = false
			last = aw.state
			armed <- err
			if err != nil {
				return
			}
		} else if err == nil && aw.state != last {
			last = aw.state
			signal()
		}
		if err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return
			}
			continue // ZooKeeper unavailable for ConnectTimeout: keep trying until stopped
		}
		select {
		case ev := <-aw.ch:
			if ev.Type == zk.EventNotWatching && errors.Is(ev.Err, zk.ErrClosing) {
				return
			}
		case <-ctx.Done():
			return
		case <-z.stop:
			return
		}
	}
}

// zkLock is an ephemeral node created exclusively.
type zkLock struct {
	z    *ZK
	path string
	once sync.Once
}

func (k *zkLock) Unlock() error {
	var err error
	k.once.Do(func() {
		k.z.mu.Lock()
		delete(k.z.locks, k)
		k.z.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), k.z.opts.ConnectTimeout)
		defer cancel()
		err = wrapZK(k.path, k.z.do(ctx, "unlock "+k.path, func() error {
			_, st, err := k.z.conn.Get(k.path)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			if err != nil {
				return err
			}
			if st.EphemeralOwner != k.z.conn.SessionID() {
				return fmt.Errorf("lock lost with an expired session")
			}
			err = k.z.conn.Delete(k.path, st.Version)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		}))
	})
	return err
}

// Lock implements StateManager: an ephemeral node created exclusively, so a holder that dies
// releases it with its session. Waiters watch the node's deletion.
func (z *ZK) Lock(ctx context.Context, topology, name string) (Unlocker, error) {
	p, err := z.path(Locks, lockNode(topology, name))
	if err != nil {
		return nil, err
	}
	for {
		gone, err := doV(z, ctx, "lock "+p, func() (<-chan zk.Event, error) {
			_, err := z.conn.Create(p, nil, zk.FlagEphemeral, z.acl)
			if !errors.Is(err, zk.ErrNodeExists) {
				return nil, err
			}
			ok, _, ch, err := z.conn.ExistsW(p)
			if err != nil {
				return nil, err
			}
			if !ok { // released in between: try again at once
				c := make(chan zk.Event)
				close(c)
				return c, nil
			}
			return ch, nil
		})
		if err != nil {
			return nil, wrapZK(p, err)
		}
		if gone == nil {
			k := &zkLock{z: z, path: p}
			z.mu.Lock()
			z.locks[k] = struct{}{}
			z.mu.Unlock()
			return k, nil
		}
		select {
		case <-gone:
		case <-ctx.Done():
			return nil, fmt.Errorf("statemgr: lock %s: held by another owner: %w", p, ctx.Err())
		case <-z.stop:
			return nil, ErrClosed
		}
	}
}

// Close implements StateManager: it releases locks, deletes owned ephemeral nodes, stops the
// watches and closes the session.
func (z *ZK) Close() error {
	z.mu.Lock()
	if z.closed {
		z.mu.Unlock()
		return nil
	}
	locks := z.locks
	z.locks = map[*zkLock]struct{}{}
	z.mu.Unlock()
	var errs []error
	for k := range locks {
		if err := k.Unlock(); err != nil {
			errs = append(errs, err)
		}
	}
	z.mu.Lock()
	z.closed = true
	z.ephemerals = map[string][]byte{}
	close(z.stop)
	z.mu.Unlock()
	z.conn.Close() // ends the session, and with it the ephemeral nodes
	z.wg.Wait()
	return errors.Join(errs...)
}

// SessionID is the current ZooKeeper session's id (0 while there is none).
func (z *ZK) SessionID() int64 { return z.conn.SessionID() }
