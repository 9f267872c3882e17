package main

import (
	"context"
	"io"
	"testing"

	"github.com/go-zookeeper/zk"
)

// TestZKServerRestart checks the suite's ZooKeeper: it answers, keeps its data over a
// stop and start, and its process is gone after the tracker's clean-up.
func TestZKServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := &scen{suite: &suite{out: io.Discard}, name: "zk-test", dir: dir, procs: newTracker("EGRET_CHAOS_RUN=zk-test", dir)}
	ctx := context.Background()
	z, err := s.startZK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.procs.cleanup()
	c, err := z.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("/kept", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	eph, err := ephemerals(c, "/")
	if err != nil || len(eph) != 1 || eph["/eph"] == 0 {
		t.Errorf("ephemerals(/) = %v, %v; want just /eph", eph, err)
	}
	c.Close()
	if err := z.stop(); err != nil {
		t.Fatal(err)
	}
	if err := z.start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = z.client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, _, err := c.Get("/kept"); err != nil || string(b) != "x" {
		t.Errorf("Get(/kept) after restart = %q, %v; want x", b, err)
	}
	z.stop()
	if left := s.procs.cleanup(); len(left) != 0 {
		t.Errorf("processes left after stop: %v", left)
	}
}
