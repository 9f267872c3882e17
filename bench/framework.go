package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"egret/framework"
	"egret/test/mesosmaster"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func init() {
	register("framework", "the Mesos framework's engine against the test master (simulated tasks)", runFramework)
}

// runFramework measures the engine on a test master with 4 agents: time
// until 20 containers run, offer matching of 100 containers over 50 offers,
// a failed task's relaunch (backoff floor 1ms), and the time back to
// reconciled after a master failover.
func runFramework(ctx context.Context, env *Env) ([]Row, error) {
	samples := 5
	if env.Quick {
		samples = 2
	}
	var up, relaunch, failover []time.Duration
	for i := 0; i < samples; i++ {
		u, r, f, err := frameworkSample(ctx)
		if err != nil {
			return nil, err
		}
		up, relaunch, failover = append(up, u), append(relaunch, r), append(failover, f)
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	// Offer matching, pure.
	var offers []mesos.Offer
	for i := 0; i < 50; i++ {
		offers = append(offers, mesos.Offer{ID: mesos.OfferID{Value: fmt.Sprint(i)}, AgentID: mesos.AgentID{Value: fmt.Sprint(i)},
			Resources: mesosmaster.Resources(8, 32768, 100000, 31000, 31010, 31020, 31030, 31040, 31100)})
	}
	var waiting []framework.Waiting
	for i := 0; i < 100; i++ {
		waiting = append(waiting, framework.Waiting{Container: i, Need: framework.Need{CPUs: 3, MemMB: 4096, DiskMB: 14000, Ports: 9}})
	}
	n := 200
	start := time.Now()
	for i := 0; i < n; i++ {
		framework.Match(waiting, offers, "*")
	}
	match := time.Since(start) / time.Duration(n)
	mu, mr, mf := med(up), med(relaunch), med(failover)
	return []Row{
		{Figure: "framework: 20 containers launched and running on 4 agents (median)", Value: mu.Round(time.Millisecond).String(),
			Floor: "—", Goal: "< 2s", Met: met(mu < 2*time.Second)},
		{Figure: "framework: match 100 containers over 50 offers (fragmented ports)", Value: ms(match),
			Floor: "—", Goal: "< 50ms", Met: met(match < 50*time.Millisecond)},
		{Figure: "framework: TASK_FAILED to relaunched task running (median, 1ms backoff)", Value: mr.Round(time.Millisecond).String(),
			Floor: "Heron: no backoff at all", Goal: "< 500ms", Met: met(mr < 500*time.Millisecond)},
		{Figure: "framework: master failover to re-subscribed and reconciled (median)", Value: mf.Round(time.Millisecond).String(),
			Floor: "Heron: no failover", Goal: "< 2s", Met: met(mf < 2*time.Second)},
	}, nil
}

func frameworkSample(ctx context.Context) (up, relaunch, failover time.Duration, err error) {
	var agents []mesosmaster.Agent
	for i := 1; i <= 4; i++ {
		agents = append(agents, mesosmaster.Agent{ID: fmt.Sprintf("agent-%d", i), Hostname: fmt.Sprintf("host%d", i),
			Resources: mesosmaster.Resources(16, 65536, 500000, 31000, 31999)})
	}
	m := mesosmaster.Start(mesosmaster.Options{Agents: agents, Standby: true})
	defer m.Close()
	e, err := framework.NewEngine(framework.EngineConfig{
		Masters: []string{m.URL()}, Topology: "bench", Store: &framework.MemoryStore{}, FailoverTimeout: time.Hour,
		Executor: mesos.ExecutorInfo{Command: &mesos.CommandInfo{}},
		TaskData: func(framework.Container) ([]byte, error) { return nil, nil },
		Policy:   framework.Policy{BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, Stable: time.Minute, Budget: 100, Window: time.Minute},
		Refuse:   50 * time.Millisecond, ReconcileRetry: 100 * time.Millisecond, SubscribeBackoffMax: 250 * time.Millisecond, Log: io.Discard,
	})
	if err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	needs := map[int]framework.Need{}
	for i := 0; i < 20; i++ {
		needs[i] = framework.Need{CPUs: 3, MemMB: 4096, DiskMB: 14000, Ports: 9}
	}
	running := func(n int) func(*mesosmaster.Master) bool {
		return func(m *mesosmaster.Master) bool {
			c := 0
			for _, t := range m.Tasks() {
				if t.State == mesos.TASK_RUNNING {
					c++
				}
			}
			return c == n
		}
	}
	start := time.Now()
	if err := e.SetContainers(ctx, needs); err != nil {
		return 0, 0, 0, err
	}
	if err := m.Wait(ctx, running(20)); err != nil {
		return 0, 0, 0, err
	}
	up = time.Since(start)

	var victim string
	for _, t := range m.Tasks() {
		if t.State == mesos.TASK_RUNNING {
			victim = t.ID
			break
		}
	}
	start = time.Now()
	if err := m.Update(victim, mesos.TASK_FAILED, "bench"); err != nil {
		return 0, 0, 0, err
	}
	if err := m.Wait(ctx, running(20)); err != nil {
		return 0, 0, 0, err
	}
	relaunch = time.Since(start)

	start = time.Now()
	if err := m.Failover(); err != nil {
		return 0, 0, 0, err
	}
	if err := e.Wait(ctx, func(s framework.Snapshot) bool { return !s.Subscribed }); err != nil {
		return 0, 0, 0, err
	}
	if err := e.Wait(ctx, func(s framework.Snapshot) bool { return s.Subscribed && s.Reconciled }); err != nil {
		return 0, 0, 0, err
	}
	failover = time.Since(start)
	return up, relaunch, failover, nil
}
