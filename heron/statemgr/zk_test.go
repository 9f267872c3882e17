package statemgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	"egret/heron/model"
	"egret/test/zktest"
)

func zkOpts(srv *zktest.Server, root string) ZKOptions {
	return ZKOptions{Servers: []string{srv.Addr()}, Root: root, SessionTimeout: time.Second,
		ConnectTimeout: 30 * time.Second, InitTree: true}
}

func openZK(t *testing.T, o ZKOptions) *ZK {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	z, err := NewZK(ctx, o)
	if err != nil {
		t.Fatalf("NewZK: %v", err)
	}
	t.Cleanup(func() { z.Close() })
	return z
}

// rawConn is a plain client straight to the server (bypassing the proxy), to look at the tree.
func rawConn(t *testing.T, srv *zktest.Server) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{srv.ServerAddr()}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestZK shares one ZooKeeper server among its subtests: it takes seconds to start.
func TestZK(t *testing.T) {
	if os.Getenv("EGRET_ZK_LOCK_HELPER") != "" {
		t.Skip("helper process")
	}
	srv := zktest.Start(t)

	t.Run("contract", func(t *testing.T) {
		contract(t, openZK(t, zkOpts(srv, "/contract/heron")))
	})

	t.Run("tree", func(t *testing.T) {
		openZK(t, zkOpts(srv, "/tree"))
		c := rawConn(t, srv)
		kids, _, err := c.Children("/tree")
		if err != nil || len(kids) != len(Kinds) {
			t.Errorf("children of /tree = %v, %v; want the %d directories", kids, err, len(Kinds))
		}
	})

	t.Run("ephemeral kinds", func(t *testing.T) {
		z := openZK(t, zkOpts(srv, "/eph"))
		ctx := context.Background()
		loc := &model.SchedulerLocation{TopologyName: proto.String("t"), HttpEndpoint: proto.String("h:1")}
		if err := SetSchedulerLocation(ctx, z, loc); err != nil {
			t.Fatal(err)
		}
		if err := sm(z).Set(ctx, PackingPlans, "t", []byte{1}); err != nil {
			t.Fatal(err)
		}
		c := rawConn(t, srv)
		_, st, err := c.Get("/eph/schedulers/t")
		if err != nil || st.EphemeralOwner != z.SessionID() {
			t.Errorf("schedulers/t owner = %v (%v), want session %x", st, err, z.SessionID())
		}
		_, st, _ = c.Get("/eph/packingplans/t")
		if st.EphemeralOwner != 0 {
			t.Errorf("packingplans/t is ephemeral, want persistent")
		}
		z.Close()
		if ok, _, _ := c.Exists("/eph/schedulers/t"); ok {
			t.Error("schedulers/t survived its owner's Close")
		}
		if ok, _, _ := c.Exists("/eph/packingplans/t"); !ok {
			t.Error("packingplans/t vanished with its writer")
		}
	})

	t.Run("session expiry re-creates ephemeral nodes and re-arms watches", func(t *testing.T) {
		owner := openZK(t, zkOpts(srv, "/expiry"))
		ctx := context.Background()
		loc := &model.TManagerLocation{TopologyName: proto.String("t"), TopologyId: proto.String("t1"),
			Host: proto.String("h"), ControllerPort: proto.Int32(1), ServerPort: proto.Int32(2)}
		if err := SetTManagerLocation(ctx, owner, loc); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		changes, err := owner.Watch(wctx, PackingPlans, "t")
		if err != nil {
			t.Fatal(err)
		}
		c := rawConn(t, srv)
		old := owner.SessionID()
		srv.Partition()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ids, err := srv.Sessions()
			if err == nil && !ids[old] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("session did not expire")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ok, _, _ := c.Exists("/expiry/tmanagers/t"); ok {
			t.Fatal("the ephemeral node outlived its expired session")
		}
		_, _, created, err := c.ExistsW("/expiry/tmanagers/t")
		if err != nil {
			t.Fatal(err)
		}
		srv.Heal()
		select {
		case ev := <-created:
			if ev.Type != zk.EventNodeCreated {
				t.Fatalf("event %v, want NodeCreated", ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the owner did not re-create its ephemeral node in its new session")
		}
		got, err := TManagerLocation(ctx, owner, "t")
		if err != nil || !proto.Equal(got, loc) {
			t.Errorf("re-created location = %v, %v", got, err)
		}
		if owner.SessionID() == old {
			t.Error("session id unchanged after expiry")
		}
		// The watch set in the old session still works.
		drain(changes)
		if _, err := c.Create("/expiry/packingplans/t", []byte("p"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, changes, 0)
	})

	t.Run("server restart in the middle of a watch", func(t *testing.T) {
		z := openZK(t, zkOpts(srv, "/restart"))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		changes, err := z.Watch(ctx, PackingPlans, "t")
		if err != nil {
			t.Fatal(err)
		}
		srv.Restart()
		drain(changes)
		writer := openZK(t, zkOpts(srv, "/restart"))
		if err := writer.Set(ctx, PackingPlans, "t", []byte("new plan")); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, changes, 0)
		if b, err := z.Get(ctx, PackingPlans, "t"); err != nil || string(b) != "new plan" {
			t.Errorf("Get after restart = %q, %v", b, err)
		}
	})

	t.Run("zookeeper down", func(t *testing.T) {
		z := openZK(t, zkOpts(srv, "/down"))
		srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		_, err := z.Get(ctx, PackingPlans, "t")
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get with ZooKeeper down = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Get took %v with a 2s deadline", d)
		}
		if err != nil && !strings.Contains(err.Error(), srv.Addr()) {
			t.Errorf("error %q does not name the server", err)
		}
		o := zkOpts(srv, "/down")
		o.ConnectTimeout = time.Second
		if _, err := NewZK(context.Background(), o); !errors.Is(err, ErrUnavailable) {
			t.Errorf("NewZK with ZooKeeper down = %v, want ErrUnavailable", err)
		}
		srv.Restart()
		ctx, cancel = context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		if err := z.Set(ctx, PackingPlans, "t", []byte("x")); err != nil {
			t.Errorf("Set after ZooKeeper came back: %v", err)
		}
	})

	t.Run("digest auth and ACLs", func(t *testing.T) {
		o := zkOpts(srv, "/secure")
		o.Digest = "egret:secret"
		z := openZK(t, o)
		if err := z.Set(context.Background(), PackingPlans, "t", []byte("p")); err != nil {
			t.Fatal(err)
		}
		c := rawConn(t, srv)
		if b, _, err := c.Get("/secure/packingplans/t"); err != nil || string(b) != "p" {
			t.Errorf("world read = %q, %v", b, err)
		}
		if err := c.Delete("/secure/packingplans/t", -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("unauthenticated delete = %v, want ErrNoAuth", err)
		}
		other := openZK(t, zkOpts(srv, "/secure"))
		if err := other.Set(context.Background(), PackingPlans, "t", []byte("q")); err == nil {
			t.Error("unauthenticated manager overwrote a protected node")
		}
	})

	t.Run("lock contention between processes", func(t *testing.T) {
		z := openZK(t, zkOpts(srv, "/locks"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestZKLockHelper$")
		cmd.Env = append(os.Environ(), "EGRET_ZK_LOCK_HELPER="+srv.Addr())
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "locked") {
			t.Fatalf("helper said %q, %v", line, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err = z.Lock(ctx, "t", "updateTopology")
		cancel()
		if err == nil {
			t.Fatal("took a lock another process holds")
		}
		// The holder dies without unlocking: its session's end frees the lock.
		cmd.Process.Kill()
		cmd.Wait()
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		u, err := z.Lock(ctx, "t", "updateTopology")
		if err != nil {
			t.Fatalf("Lock after the holder died: %v", err)
		}
		if err := u.Unlock(); err != nil {
			t.Error(err)
		}
	})
}

func sm(z *ZK) StateManager { return z }

// TestZKLockHelper is the other process of the lock test: it takes the lock and holds it.
func TestZKLockHelper(t *testing.T) {
	addr := os.Getenv("EGRET_ZK_LOCK_HELPER")
	if addr == "" {
		t.Skip("run by TestZK")
	}
	z, err := NewZK(context.Background(), ZKOptions{Servers: []string{addr}, Root: "/locks",
		SessionTimeout: time.Second, ConnectTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := z.Lock(context.Background(), "t", "updateTopology"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	select {} // until killed
}
