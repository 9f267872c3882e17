package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
)

// zkServer is a real ZooKeeper server (Debian's package) on loopback, run by the suite
// as one java process it can stop and start again on the same data directory.
type zkServer struct {
	s    *scen
	dir  string
	port int
	proc *bg
}

// zkJars are the jars of Debian's zookeeper package the server needs.
var zkJars = []string{"zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-nop", "netty-handler", "netty-common",
	"netty-buffer", "netty-transport", "netty-codec", "netty-resolver", "netty-transport-native-epoll",
	"netty-transport-native-unix-common", "metrics-core", "commons-io"}

func (s *scen) startZK(ctx context.Context) (*zkServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	z := &zkServer{s: s, dir: filepath.Join(s.dir, "zookeeper"), port: port}
	if err := os.MkdirAll(filepath.Join(z.dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n4lw.commands.whitelist=ruok,srvr,stat,cons\n",
		filepath.Join(z.dir, "data"), port)
	if err := os.WriteFile(filepath.Join(z.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return z, z.start(ctx)
}

func (z *zkServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", z.port) }

func (z *zkServer) start(ctx context.Context) error {
	var cp []string
	for _, j := range zkJars {
		p := "/usr/share/java/" + j + ".jar"
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("ZooKeeper is not installed (%s missing): run make zookeeper", p)
		}
		cp = append(cp, p)
	}
	// The server outlives any one scenario step, so it gets the suite's context, not ctx's deadline.
	b, err := z.s.procs.start(context.WithoutCancel(ctx), filepath.Join(z.dir, "server.log"), "java",
		"-Xmx128m", "-cp", strings.Join(cp, ":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(z.dir, "zoo.cfg"))
	if err != nil {
		return err
	}
	z.proc = b
	return waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-b.done:
			return fmt.Errorf("zookeeper exited: %v (see %s)", b.err, filepath.Join(z.dir, "server.log"))
		default:
		}
		// ruok answers before the server serves; srvr names its mode once it does.
		if r, err := z.fourLetter("srvr"); err != nil || !strings.Contains(r, "Mode: standalone") {
			return fmt.Errorf("zookeeper on %s not serving: %q %v", z.addr(), r, err)
		}
		return nil
	})
}

// stop stops the server with SIGTERM to its process group and waits for it.
func (z *zkServer) stop() error {
	if z.proc == nil {
		return nil
	}
	_ = syscall.Kill(-z.proc.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-z.proc.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-z.proc.cmd.Process.Pid, syscall.SIGKILL)
		<-z.proc.done
	}
	z.proc = nil
	return nil
}

// fourLetter sends one of ZooKeeper's four-letter commands.
func (z *zkServer) fourLetter(cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", z.addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return strings.TrimSpace(b.String()), nil
}

// quietLogger drops go-zookeeper's connection chatter.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// zkClient is the suite's own view of the state tree, to see ephemeral nodes come and go.
func (z *zkServer) client() (*zk.Conn, error) {
	c, _, err := zk.Connect([]string{z.addr()}, 10*time.Second, zk.WithLogger(quietLogger{}), zk.WithLogInfo(false))
	return c, err
}

// ephemerals maps every ephemeral node under root to its owner session.
func ephemerals(c *zk.Conn, root string) (map[string]int64, error) {
	out := map[string]int64{}
	var walk func(p string) error
	walk = func(p string) error {
		kids, st, err := c.Children(p)
		if err == zk.ErrNoNode {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", p, err)
		}
		if st.EphemeralOwner != 0 {
			out[p] = st.EphemeralOwner
		}
		for _, k := range kids {
			if err := walk(strings.TrimSuffix(p, "/") + "/" + k); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root)
}

func init() {
	register(scenario{order: 70, name: "zk-outage", timeout: 5 * time.Minute, run: zkOutage,
		about: "stop and restart ZooKeeper, and expire a session on purpose, under a localzk word count: ephemeral locations re-created, nothing stuck"})
}

// zkSessionTimeout is the session timeout the topology is given, short so that an
// expiry can be caused in a few seconds.
const zkSessionTimeout = 4 * time.Second

func zkOutage(ctx context.Context, s *scen) error {
	z, err := s.startZK(ctx)
	if err != nil {
		return err
	}
	defer z.stop()
	s.logf("ZooKeeper runs on %s", z.addr())
	// The suite's own server is not the topology's: egret kill must not be blamed for it.
	s.exempt = func(pid int) bool { return z.proc != nil && pid == z.proc.cmd.Process.Pid }
	root := "/egret-chaos"
	t, err := s.newTopo("localzk",
		"heron.statemgr.connection.string="+z.addr(),
		"heron.statemgr.root.path="+root,
		fmt.Sprintf("heron.statemgr.zookeeper.session.timeout.ms=%d", zkSessionTimeout.Milliseconds()))
	if err != nil {
		return err
	}
	if err := t.submit(ctx); err != nil {
		return err
	}
	defer t.killAndCheck(ctx)
	before, err := t.waitUp(ctx, nil)
	if err != nil {
		return fmt.Errorf("topology not up: %v", err)
	}
	c, err := z.client()
	if err != nil {
		return err
	}
	defer func() { c.Close() }()
	eph, err := ephemerals(c, root)
	if err != nil {
		return err
	}
	s.logf("up; ephemeral nodes: %s", describeEphemerals(eph))
	if len(eph) == 0 {
		s.failf("no ephemeral node under %s (want at least the topology manager's and the scheduler's locations)", root)
	}

	// 1. ZooKeeper stopped for a while, then started again on the same data.
	c.Close()
	if err := z.stop(); err != nil {
		return err
	}
	s.logf("stopped ZooKeeper")
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	_, serr := t.egret(sctx, "status", t.cluster, t.name)
	hung := sctx.Err() != nil
	cancel()
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case hung:
		s.failf("egret status with ZooKeeper down hung for %v", took)
	case serr != nil:
		s.logf("egret status with ZooKeeper down failed in %v: %v", took, serr)
	default:
		s.logf("egret status with ZooKeeper down answered in %v", took)
	}
	if err := z.start(ctx); err != nil {
		return err
	}
	s.logf("started ZooKeeper again after %v", time.Since(start).Round(time.Second))
	if c, err = z.client(); err != nil {
		return err
	}
	if _, err := t.waitUp(ctx, &before); err != nil {
		s.failf("after ZooKeeper's restart: %v", err)
	}
	s.waitEphemerals(ctx, c, root, eph, nil, "after ZooKeeper's restart")

	// 2. A session expired on purpose: the scheduler daemon and the topology manager
	// are stopped (SIGSTOP) longer than the session timeout, so ZooKeeper expires
	// their sessions and drops their ephemeral nodes; once continued, they must notice
	// and create them again.
	now := t.snapshot()
	targets := append([]procInfo(nil), now.scheduler...)
	for _, d := range now.allDaemons() {
		if strings.Contains(now.argv[d.PID], "tmanager") || strings.Contains(now.argv[d.PID], "tmaster") {
			targets = append(targets, d)
			break
		}
	}
	eph, _ = ephemerals(c, root)
	for _, p := range targets {
		_ = syscall.Kill(p.PID, syscall.SIGSTOP)
	}
	stopped := true
	cont := func() {
		if stopped {
			for _, p := range targets {
				_ = syscall.Kill(p.PID, syscall.SIGCONT)
			}
			stopped = false
		}
	}
	defer cont()
	s.logf("SIGSTOPped %d processes (the scheduler daemon and the topology manager) for %v", len(targets), zkSessionTimeout+3*time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(zkSessionTimeout + 3*time.Second):
	}
	gone, _ := ephemerals(c, root)
	var vanished []string
	for p := range eph {
		if _, ok := gone[p]; !ok {
			vanished = append(vanished, p)
		}
	}
	s.logf("with their sessions expired, %d ephemeral nodes vanished: %s", len(vanished), strings.Join(vanished, ", "))
	cont()
	s.logf("SIGCONTinued them")
	s.waitEphemerals(ctx, c, root, eph, vanished, "after the session expiry")
	if _, err := t.waitUp(ctx, &before); err != nil {
		s.failf("after the session expiry: %v", err)
	}
	return nil
}

// waitEphemerals waits until every ephemeral node of want exists again; those in
// expired must have a new owner session.
func (s *scen) waitEphemerals(ctx context.Context, c *zk.Conn, root string, want map[string]int64, expired []string, when string) {
	var got map[string]int64
	err := waitFor(ctx, upTimeout, 200*time.Millisecond, func() error {
		var err error
		if got, err = ephemerals(c, root); err != nil {
			return err
		}
		var missing []string
		for p := range want {
			if _, ok := got[p]; !ok {
				missing = append(missing, p)
			}
		}
		for _, p := range expired {
			if got[p] == want[p] {
				missing = append(missing, p+" (still the expired session's)")
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("ephemeral nodes not re-created: %s", strings.Join(missing, ", "))
		}
		return nil
	})
	if err != nil {
		s.failf("%s: %v", when, err)
		return
	}
	s.logf("%s, every ephemeral node is back: %s", when, describeEphemerals(got))
}

func describeEphemerals(m map[string]int64) string {
	var parts []string
	for p, owner := range m {
		parts = append(parts, fmt.Sprintf("%s (session %#x)", p, owner))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
