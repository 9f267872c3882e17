package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The tmanager and the stream managers speak a line protocol of our own on
// the tmanager's server port:
//
//	stmgr:    REGISTER <stmgr_id> <host> <data_port> <local_data_port> <shell_port> <pid> <cwd> <instance_ids,...>
//	tmanager: OK | ERR <reason>
//	stmgr:    HEARTBEAT          (every heartbeatEvery)
//	tmanager: OK
//
// A closed connection unregisters the stream manager.
const heartbeatEvery = time.Second

// stmgrInfo is one registered stream manager, as published in the physical plan.
type stmgrInfo struct {
	ID            string
	Host          string
	DataPort      int
	LocalDataPort int
	ShellPort     int
	PID           int
	Cwd           string
	Instances     []string
}

func parseRegister(line string) (stmgrInfo, error) {
	f := strings.Fields(line)
	if len(f) != 9 || f[0] != "REGISTER" {
		return stmgrInfo{}, fmt.Errorf("bad registration %q", line)
	}
	var s stmgrInfo
	var err error
	s.ID, s.Host, s.Cwd = f[1], f[2], f[7]
	nums := []*int{&s.DataPort, &s.LocalDataPort, &s.ShellPort, &s.PID}
	for i, p := range nums {
		if *p, err = strconv.Atoi(f[3+i]); err != nil {
			return stmgrInfo{}, fmt.Errorf("bad registration %q: %w", line, err)
		}
	}
	if f[8] != "-" {
		s.Instances = strings.Split(f[8], ",")
	}
	return s, nil
}

func (s stmgrInfo) registerLine() string {
	ids := strings.Join(s.Instances, ",")
	if ids == "" {
		ids = "-"
	}
	return fmt.Sprintf("REGISTER %s %s %d %d %d %d %s %s\n", s.ID, s.Host, s.DataPort, s.LocalDataPort, s.ShellPort, s.PID, s.Cwd, ids)
}

func runTManager(ctx context.Context, args []string) error {
	m, err := strictFlags("heron-tmanager", args, "topology_name", "topology_id", "zkhostportlist", "zkroot",
		"myhost", "server_port", "controller_port", "stats_port", "config_file", "override_config_file",
		"metrics_sinks_yaml", "metricsmgr_port", "ckptmgr_port")
	if err != nil {
		return err
	}
	var ports [3]int
	for i, n := range []string{"server_port", "controller_port", "stats_port"} {
		if ports[i], err = portOf(m, n); err != nil {
			return err
		}
	}
	d, err := startDaemon(ctx, "heron-tmanager")
	if err != nil {
		return err
	}
	st, err := openState(ctx, m["zkhostportlist"], m["zkroot"], m["topology_name"])
	if err != nil {
		return fmt.Errorf("%w", err)
	}
	defer st.Close()
	tm := &tmanager{
		d: d, st: st, name: m["topology_name"], id: m["topology_id"],
		registered: map[string]stmgrInfo{},
	}
	return tm.run(ctx, advertiseHost(m["myhost"]), ports[0], ports[1], ports[2])
}

type tmanager struct {
	d    *daemon
	st   state
	name string
	id   string

	mu         sync.Mutex
	plan       *simPlan
	registered map[string]stmgrInfo
	written    string // fingerprint of the last physical plan written
	paused     bool
}

func (tm *tmanager) run(ctx context.Context, host string, server, controller, stats int) error {
	plan, planChanged, err := tm.st.WatchPackingPlan(ctx)
	if err != nil {
		return fmt.Errorf("read packing plan: %w", err)
	}
	if plan == nil {
		return fmt.Errorf("no packing plan for %s", tm.name)
	}
	tm.plan = plan
	tm.paused = tm.st.InitiallyPaused(ctx)
	g, ctx := newGroup(ctx)
	var ls []net.Listener
	for _, p := range []int{server, controller, stats} {
		l, err := listen(p)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			g.stop()
			g.Wait()
			return fmt.Errorf("%w", err)
		}
		ls = append(ls, l)
	}
	if err := tm.st.PublishTManager(ctx, host, server, controller, stats); err != nil {
		return fmt.Errorf("publish location: %w", err)
	}
	lost, err := tm.st.WatchTManagerLost(ctx)
	if err != nil {
		return fmt.Errorf("watch location: %w", err)
	}
	fmt.Printf("heron-tmanager: location published %s:%d, waiting for %d stream managers\n", host, server, len(plan.Containers))
	g.Go(func() error { return tm.serveStmgrs(ctx, ls[0]) })
	serveHTTP(ctx, g, ls[1], tm.controller())
	serveHTTP(ctx, g, ls[2], http.NotFoundHandler())
	var exit error
	select {
	case <-ctx.Done():
		fmt.Println("heron-tmanager: stopping")
	case <-planChanged:
		// As Heron's: the physical plan is obsolete; the executor restarts us.
		fmt.Println("heron-tmanager: packing plan changed, deleting the physical plan and exiting")
		if err := tm.st.DeletePhysicalPlan(context.Background()); err != nil {
			fmt.Printf("heron-tmanager: delete physical plan: %v\n", err)
		}
		exit = exitCode(1)
	case <-lost:
		fmt.Println("heron-tmanager: lost its location node, exiting")
		exit = exitCode(1)
	}
	g.stop()
	if err := g.Wait(); err != nil && exit == nil {
		exit = err
	}
	return exit
}

func (tm *tmanager) serveStmgrs(ctx context.Context, l net.Listener) error {
	if tm.d.unhealthy {
		l.Close()
		<-ctx.Done()
		return nil
	}
	go func() { <-ctx.Done(); l.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm.serveStmgr(ctx, c)
		}()
	}
}

func (tm *tmanager) serveStmgr(ctx context.Context, c net.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	sc := bufio.NewScanner(c)
	if !sc.Scan() {
		return
	}
	s, err := parseRegister(sc.Text())
	if err == nil {
		err = tm.register(s)
	}
	if err != nil {
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
	fmt.Fprintln(c, "OK")
	fmt.Printf("heron-tmanager: %s registered from %s:%d\n", s.ID, s.Host, s.DataPort)
	tm.maybeWritePlan(ctx)
	for sc.Scan() {
		fmt.Fprintln(c, "OK")
	}
	tm.mu.Lock()
	if cur, ok := tm.registered[s.ID]; ok && cur.PID == s.PID {
		delete(tm.registered, s.ID)
		fmt.Printf("heron-tmanager: %s disconnected\n", s.ID)
	}
	tm.mu.Unlock()
}

func (tm *tmanager) register(s stmgrInfo) error {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	want := tm.plan.stmgrIDs()
	if !want[s.ID] {
		return fmt.Errorf("%s is not in the packing plan", s.ID)
	}
	tm.registered[s.ID] = s
	return nil
}

// maybeWritePlan writes the physical plan once every stream manager of the
// packing plan has registered, and again whenever one of them changed.
func (tm *tmanager) maybeWritePlan(ctx context.Context) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for id := range tm.plan.stmgrIDs() {
		if _, ok := tm.registered[id]; !ok {
			return
		}
	}
	tm.writePlanLocked(ctx)
}

func (tm *tmanager) writePlanLocked(ctx context.Context) {
	var ss []stmgrInfo
	for _, s := range tm.registered {
		ss = append(ss, s)
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].ID < ss[j].ID })
	fp := fmt.Sprint(ss, tm.paused)
	if fp == tm.written {
		return
	}
	if err := tm.st.WritePhysicalPlan(ctx, tm.plan, ss, tm.paused); err != nil {
		fmt.Printf("heron-tmanager: write physical plan: %v\n", err)
		return
	}
	tm.written = fp
	fmt.Printf("heron-tmanager: physical plan written (%d stream managers, paused=%v)\n", len(ss), tm.paused)
}

// controller serves /activate and /deactivate?topologyid=... by changing the
// state of the topology in the physical plan.
func (tm *tmanager) controller() http.Handler {
	mux := http.NewServeMux()
	set := func(paused bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if id := r.FormValue("topologyid"); id != tm.id {
				http.Error(w, fmt.Sprintf("topologyid %q is not %q", id, tm.id), http.StatusBadRequest)
				return
			}
			tm.mu.Lock()
			defer tm.mu.Unlock()
			if tm.written == "" {
				http.Error(w, "physical plan not yet available", http.StatusServiceUnavailable)
				return
			}
			if tm.paused == paused {
				state := "RUNNING"
				if paused {
					state = "PAUSED"
				}
				http.Error(w, "topology already "+state, http.StatusBadRequest)
				return
			}
			tm.paused = paused
			tm.writePlanLocked(r.Context())
			fmt.Fprintln(w, "OK")
		}
	}
	mux.HandleFunc("/activate", set(false))
	mux.HandleFunc("/deactivate", set(true))
	return mux
}

func runStmgr(ctx context.Context, args []string) error {
	m, err := strictFlags("heron-stmgr", args, "topology_name", "topology_id", "topologydefn_file",
		"zkhostportlist", "zkroot", "stmgr_id", "instance_ids", "myhost", "data_port", "local_data_port",
		"metricsmgr_port", "shell_port", "config_file", "override_config_file", "ckptmgr_port", "ckptmgr_id",
		"metricscachemgr_mode")
	if err != nil {
		return err
	}
	var ports [3]int
	for i, n := range []string{"data_port", "local_data_port", "shell_port"} {
		if ports[i], err = portOf(m, n); err != nil {
			return err
		}
	}
	if _, err := os.Stat(m["topologydefn_file"]); err != nil {
		return fmt.Errorf("topology definition: %w", err)
	}
	d, err := startDaemon(ctx, m["stmgr_id"])
	if err != nil {
		return err
	}
	st, err := openState(ctx, m["zkhostportlist"], m["zkroot"], m["topology_name"])
	if err != nil {
		return fmt.Errorf("%w", err)
	}
	defer st.Close()
	cwd, _ := os.Getwd()
	var ids []string
	if m["instance_ids"] != "" {
		ids = strings.Split(m["instance_ids"], ",")
	}
	me := stmgrInfo{ID: m["stmgr_id"], Host: advertiseHost(m["myhost"]), DataPort: ports[0],
		LocalDataPort: ports[1], ShellPort: ports[2], PID: os.Getpid(), Cwd: cwd, Instances: ids}
	g, ctx := newGroup(ctx)
	for _, p := range ports[:2] {
		l, err := listen(p)
		if err != nil {
			g.stop()
			g.Wait()
			return fmt.Errorf("%s: %w", me.ID, err)
		}
		d.serveTCP(ctx, g, l)
	}
	g.Go(func() error { return stmgrConnect(ctx, st, me) })
	fmt.Printf("%s: listening on %d and %d\n", me.ID, ports[0], ports[1])
	<-ctx.Done()
	fmt.Printf("%s: stopping\n", me.ID)
	return g.Wait()
}

// stmgrConnect keeps the stream manager registered with the tmanager found
// in the state tree, following the location when it changes.
func stmgrConnect(ctx context.Context, st state, me stmgrInfo) error {
	for ctx.Err() == nil {
		addr, changed, err := st.WatchTManager(ctx)
		if err != nil {
			return fmt.Errorf("%s: watch tmanager location: %w", me.ID, err)
		}
		if addr == "" {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
				cancel()
			case <-cctx.Done():
			}
		}()
		err = stmgrSession(cctx, addr, me)
		if err != nil && ctx.Err() == nil {
			fmt.Printf("%s: tmanager %s: %v\n", me.ID, addr, err)
			// The location may be stale (local state has no ephemeral nodes):
			// wait for it to change or retry shortly.
			select {
			case <-changed:
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		cancel()
	}
	return nil
}

func stmgrSession(ctx context.Context, addr string, me stmgrInfo) error {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte(me.registerLine())); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "OK" {
		return fmt.Errorf("registration refused: %s", strings.TrimSpace(line))
	}
	fmt.Printf("%s: registered with tmanager at %s\n", me.ID, addr)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := c.Write([]byte("HEARTBEAT\n")); err != nil {
			return err
		}
		if _, err := r.ReadString('\n'); err != nil {
			return err
		}
	}
}
