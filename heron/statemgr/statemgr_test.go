package statemgr

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
)

// contract runs the behaviour both implementations share.
func contract(t *testing.T, sm StateManager) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const name = "wordcount"

	t.Run("get missing", func(t *testing.T) {
		if _, err := sm.Get(ctx, PackingPlans, "nothing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("create-only kinds", func(t *testing.T) {
		topo := &model.Topology{Id: proto.String("wordcount-1"), Name: proto.String(name), State: model.TopologyState_RUNNING.Enum()}
		if err := SetTopology(ctx, sm, topo); err != nil {
			t.Fatalf("SetTopology: %v", err)
		}
		if err := SetTopology(ctx, sm, topo); !errors.Is(err, ErrExists) {
			t.Errorf("second SetTopology error = %v, want ErrExists", err)
		}
		got, err := Topology(ctx, sm, name)
		if err != nil || !proto.Equal(got, topo) {
			t.Errorf("Topology = %v, %v; want %v", got, err, topo)
		}
		if err := sm.Replace(ctx, Topologies, name, []byte("x")); err != nil {
			t.Errorf("Replace(topologies) = %v, want nil", err)
		}
	})

	t.Run("overwritable kinds", func(t *testing.T) {
		for i, id := range []string{"plan-1", "plan-2"} {
			p := &model.PackingPlan{Id: proto.String(id)}
			if err := SetPackingPlan(ctx, sm, name, p); err != nil {
				t.Fatalf("SetPackingPlan #%d: %v", i, err)
			}
		}
		got, err := PackingPlan(ctx, sm, name)
		if err != nil || got.GetId() != "plan-2" {
			t.Errorf("PackingPlan = %v, %v; want id plan-2", got, err)
		}
	})

	t.Run("list and delete", func(t *testing.T) {
		if err := sm.Set(ctx, PackingPlans, "other", []byte{1}); err != nil {
			t.Fatal(err)
		}
		names, err := sm.List(ctx, PackingPlans)
		if err != nil || len(names) != 2 || names[0] != "other" || names[1] != name {
			t.Errorf("List = %v, %v; want [other %s]", names, err, name)
		}
		if err := sm.Delete(ctx, PackingPlans, "other"); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if err := sm.Delete(ctx, PackingPlans, "other"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
	})

	t.Run("bad names", func(t *testing.T) {
		for _, n := range []string{"", "a/b", "..", "."} {
			if err := sm.Set(ctx, PackingPlans, n, []byte{1}); err == nil {
				t.Errorf("Set(%q) succeeded, want an error", n)
			}
		}
		if _, err := sm.Get(ctx, Kind("nope"), "x"); err == nil {
			t.Error("Get(unknown kind) succeeded")
		}
	})

	t.Run("watch", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		ch, err := sm.Watch(wctx, PackingPlans, "watched")
		if err != nil {
			t.Fatal(err)
		}
		for i, step := range []func() error{
			func() error { return sm.Set(ctx, PackingPlans, "watched", []byte("one")) },
			func() error { return sm.Set(ctx, PackingPlans, "watched", []byte("two")) },
			func() error { return sm.Delete(ctx, PackingPlans, "watched") },
		} {
			drain(ch)
			if err := step(); err != nil {
				t.Fatal(err)
			}
			waitSignal(t, ch, i)
		}
		wcancel()
		waitClosed(t, ch)
	})

	t.Run("lock", func(t *testing.T) {
		u, err := sm.Lock(ctx, name, "updateTopology")
		if err != nil {
			t.Fatal(err)
		}
		short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = sm.Lock(short, name, "updateTopology")
		scancel()
		if err == nil {
			t.Fatal("second Lock succeeded while the first is held")
		}
		names, _ := sm.List(ctx, Locks)
		if len(names) != 1 || names[0] != name+"__updateTopology" {
			t.Errorf("locks = %v, want [%s__updateTopology]", names, name)
		}
		got := make(chan error, 1)
		go func() {
			u2, err := sm.Lock(ctx, name, "updateTopology")
			if err == nil {
				err = u2.Unlock()
			}
			got <- err
		}()
		if err := u.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Errorf("Lock after Unlock: %v", err)
		}
	})

	t.Run("clean", func(t *testing.T) {
		if err := CleanTopology(ctx, sm, name); err != nil {
			t.Fatal(err)
		}
		for _, k := range Kinds {
			names, err := sm.List(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if n == name {
					t.Errorf("%s/%s survived CleanTopology", k, n)
				}
			}
		}
	})
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, step int) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("step %d: watch channel closed", step)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("step %d: no change signalled within 5s", step)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

func TestLocalContract(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	contract(t, l)
}

func TestLocalLayoutIsHerons(t *testing.T) {
	root := t.TempDir()
	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, k := range Kinds {
		if st, err := os.Stat(filepath.Join(root, string(k))); err != nil || !st.IsDir() {
			t.Errorf("%s: not a directory: %v", k, err)
		}
	}
	loc := &model.TManagerLocation{TopologyName: proto.String("t"), TopologyId: proto.String("t1"),
		Host: proto.String("h"), ControllerPort: proto.Int32(1), ServerPort: proto.Int32(2)}
	if err := SetTManagerLocation(context.Background(), l, loc); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "tmanagers", "t"))
	want, _ := proto.Marshal(loc)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("tmanagers/t = %x, %v; want the protobuf bytes %x", b, err, want)
	}
	// Heron reads an empty file as missing.
	os.WriteFile(filepath.Join(root, "pplans", "empty"), nil, 0o644)
	if _, err := l.Get(context.Background(), PhysicalPlans, "empty"); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty file: %v, want ErrNotFound", err)
	}
	// No temporary files are left beside the nodes.
	ents, _ := os.ReadDir(filepath.Join(root, "tmanagers"))
	if len(ents) != 1 {
		t.Errorf("tmanagers holds %d entries, want 1", len(ents))
	}
}

func TestLocalWatchSeesOtherWriters(t *testing.T) {
	// A writer that is not egret (Heron's Java manager writes in place) is seen too.
	root := t.TempDir()
	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.Watch(ctx, PackingPlans, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "packingplans", "t"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, 0)
}

func TestLocalStaleLockIsBroken(t *testing.T) {
	root := t.TempDir()
	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	host, _ := os.Hostname()
	// A pid that cannot exist on Linux (above pid_max's ceiling).
	stale := []byte(`{"format_version":1,"pid":2147483647,"host":"` + host + `"}`)
	os.WriteFile(filepath.Join(root, "locks", "t__updateTopology"), stale, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := l.Lock(ctx, "t", "updateTopology")
	if err != nil {
		t.Fatalf("Lock over a dead holder's file: %v", err)
	}
	u.Unlock()
}

func TestLocalNewerLockFormatRefused(t *testing.T) {
	root := t.TempDir()
	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.WriteFile(filepath.Join(root, "locks", "t__x"), []byte(`{"format_version":2,"pid":1,"host":"h"}`), 0o644)
	_, err = l.Lock(context.Background(), "t", "x")
	if err == nil || !strings.Contains(err.Error(), "has format_version 2; this egret reads format_version 1 or older") {
		t.Errorf("Lock over a newer lock file = %v", err)
	}
}

func TestLocalClosed(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := l.Watch(context.Background(), PackingPlans, "t")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	waitClosed(t, ch)
	if _, err := l.Get(context.Background(), PackingPlans, "t"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

func TestOpenChoosesByConfig(t *testing.T) {
	root := t.TempDir()
	cfg, err := config.Load(config.Options{Cluster: "local", Role: "r", Properties: []string{"heron.statemgr.root.path=" + root}})
	if err != nil {
		t.Fatal(err)
	}
	sm, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if l, ok := sm.(*Local); !ok || l.Root() != root {
		t.Errorf("Open(local) = %T, want *Local at %s", sm, root)
	}
	bad, _ := config.Load(config.Options{Cluster: "local", Properties: []string{"heron.class.state.manager=org.example.Mine"}})
	if _, err := Open(context.Background(), bad); err == nil {
		t.Error("Open with an unknown class succeeded")
	}
}
