package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"egret/test/mesosagent"
)

func init() {
	register(scenario{order: 35, name: "agent-stream", timeout: 3 * time.Minute, run: agentStream,
		about: "the test agent drops the executor's stream, or restarts, every few hundred ms while tasks start, finish, fail and are killed: every update acknowledged exactly once, none lost"})
}

// streamTask is one task of the scenario and the terminal state it must end in.
type streamTask struct {
	id   string
	cmd  string
	want mesos.TaskState
	kill bool // killed by the scenario once running
}

func agentStream(ctx context.Context, s *scen) error {
	bin, err := s.egret(ctx)
	if err != nil {
		return err
	}
	agent, err := mesosagent.New(mesosagent.Options{EgretBin: bin,
		// Long enough that a slow re-subscription shows as a finding of its own, not
		// as an executor the agent destroyed.
		ReregistrationTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer agent.Close()
	ex, err := agent.Launch(mesosagent.ExecutorSpec{
		FrameworkID: "chaos-framework", ExecutorID: "chaos-executor",
		Capabilities:    []mesos.FrameworkInfo_Capability_Type{mesos.FrameworkInfo_Capability_TASK_KILLING_STATE},
		Checkpoint:      true,
		RecoveryTimeout: 2 * time.Minute,
		BackoffMax:      500 * time.Millisecond,
		Sandbox:         filepath.Join(s.dir, "sandbox"),
		Env:             []string{s.procs.marker},
	})
	if err != nil {
		return err
	}
	if err := ex.WaitSubscribed(ctx, 1); err != nil {
		return err
	}
	s.logf("executor pid %d subscribed to the agent at %s", ex.Pid(), agent.Endpoint())

	// The anchor keeps the executor busy for the whole run: with every task ended,
	// an executor exits, as Mesos' do.
	anchor := "exec sleep 1000"
	ex.LaunchTask(mesos.TaskInfo{Name: "anchor", TaskID: mesos.TaskID{Value: "anchor"}, Command: &mesos.CommandInfo{Value: &anchor}})
	if _, err := ex.WaitState(ctx, "anchor", mesos.TASK_RUNNING); err != nil {
		return err
	}
	var tasks []streamTask
	for i := 0; i < 24; i++ {
		d := fmt.Sprintf("%.1f", 0.2+s.rand.Float64()*2)
		switch i % 3 {
		case 0:
			tasks = append(tasks, streamTask{fmt.Sprintf("finishes-%d", i), "sleep " + d + "; exit 0", mesos.TASK_FINISHED, false})
		case 1:
			tasks = append(tasks, streamTask{fmt.Sprintf("fails-%d", i), "sleep " + d + "; echo failing; exit 3", mesos.TASK_FAILED, false})
		default:
			tasks = append(tasks, streamTask{fmt.Sprintf("killed-%d", i), "exec sleep 1000", mesos.TASK_KILLED, true})
		}
	}

	// Launch the tasks while dropping the stream at random short intervals; kill the
	// long-running ones a little after their launch, also across drops.
	drops, restarts := 0, 0
	var slowest time.Duration
	next := 0
	var toKill []string
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) || next < len(tasks) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ex.Done():
			return fmt.Errorf("the executor exited in the middle of the run: %v (updates: %s)", ex.ExitErr(), mesosagent.Summary(ex.Updates()))
		case <-time.After(time.Duration(100+s.rand.Intn(300)) * time.Millisecond):
		}
		if next < len(tasks) {
			t := tasks[next]
			ex.LaunchTask(mesos.TaskInfo{Name: t.id, TaskID: mesos.TaskID{Value: t.id}, Command: &mesos.CommandInfo{Value: &t.cmd}})
			if t.kill {
				toKill = append(toKill, t.id)
			}
			next++
		}
		if len(toKill) > 0 && s.rand.Intn(3) == 0 {
			// A KILL needs an open stream; one that cannot go now goes on a later round.
			if st, ok := ex.TaskState(toKill[0]); ok && st == mesos.TASK_RUNNING && ex.Kill(toKill[0], 5*time.Second) {
				toKill = toKill[1:]
			}
		}
		subs := len(ex.Subscriptions())
		cut := time.Now()
		if s.rand.Intn(4) == 0 {
			// The agent goes away for a moment, as when it restarts: updates sent
			// meanwhile, and ACKs in flight, are lost and must come again through the
			// next SUBSCRIBE's unacknowledged list.
			agent.Stop()
			time.Sleep(time.Duration(100+s.rand.Intn(300)) * time.Millisecond)
			recovering := s.rand.Intn(2) == 0
			if err := agent.Start(recovering); err != nil {
				return err
			}
			if recovering {
				time.Sleep(200 * time.Millisecond)
				agent.Recovered()
			}
			restarts++
		} else {
			ex.DropStream()
			drops++
		}
		// The executor must come back at once: its backoff is capped at 500 ms.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := ex.WaitSubscribed(wctx, subs+1)
		cancel()
		if err != nil {
			if os.Getenv("CHAOS_DEBUG") != "" {
				_ = syscall.Kill(ex.Pid(), syscall.SIGQUIT)
				time.Sleep(time.Second)
			}
			return fmt.Errorf("no re-subscription within 10 s of a break: %v", err)
		}
		if d := time.Since(cut); d > slowest {
			slowest = d
		}
	}
	// A KILL queued on a stream that is then dropped is lost, as with Mesos' agent; a
	// framework sends it again until the task ends, and so does the scenario.
	tasks = append(tasks, streamTask{"anchor", anchor, mesos.TASK_KILLED, true})
	for _, t := range tasks {
		if !t.kill {
			continue
		}
		id := t.id
		if err := waitFor(ctx, 60*time.Second, 500*time.Millisecond, func() error {
			if st, ok := ex.TaskState(id); ok && terminalState(strings.TrimPrefix(st.String(), "TASK_")) {
				return nil
			}
			ex.Kill(id, 5*time.Second)
			return fmt.Errorf("task %s not killed", id)
		}); err != nil {
			s.failf("%v", err)
		}
	}
	s.logf("launched %d tasks; dropped the stream %d times and restarted the agent %d times; the slowest re-subscription took %v",
		len(tasks)-1, drops, restarts, slowest.Round(time.Millisecond))
	if slowest > 5*time.Second {
		s.failf("a re-subscription took %v, with the backoff capped at 500 ms", slowest.Round(time.Millisecond))
	}

	// A LAUNCH still queued when the stream breaks never reaches the executor; on the
	// next SUBSCRIBE the agent finds the task missing from the executor's list and
	// reports it LOST itself, as Mesos does. That is a launch lost, not an update.
	undelivered := map[string]bool{}
	for _, t := range tasks {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = ex.Wait(wctx, func(us []mesosagent.Update, _ []mesosagent.Subscription) bool {
			for _, u := range us {
				if u.Status.TaskID.Value == t.id && terminalState(strings.TrimPrefix(u.Status.GetState().String(), "TASK_")) {
					return true
				}
			}
			return false
		})
		cancel()
		fromExecutor := 0
		for _, u := range ex.Updates() {
			if u.Status.TaskID.Value == t.id {
				if u.Generated && u.Status.GetState() == mesos.TASK_LOST && fromExecutor == 0 {
					undelivered[t.id] = true
				}
				if !u.Generated {
					fromExecutor++
				}
			}
		}
	}
	if len(undelivered) > 0 {
		s.logf("%d launches were queued on a stream that broke before delivery; the agent reported those tasks LOST", len(undelivered))
	}
	// With every task ended the executor may already be on its way out.
	_ = waitFor(ctx, 5*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-ex.Done():
			return nil
		default:
		}
		if !ex.Shutdown() {
			return fmt.Errorf("no stream")
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = ex.WaitExit(wctx)
	cancel()
	if err != nil {
		s.failf("executor exit: %v", err)
	}

	// The accounting: per task, the first-time updates and their states; duplicates
	// must be resends of updates the executor listed as unacknowledged in a SUBSCRIBE.
	unacked := map[string]bool{}
	replayed := 0
	for _, sub := range ex.Subscriptions() {
		for _, st := range sub.UnacknowledgedUpdates {
			unacked[string(st.UUID)] = true
			replayed++
		}
	}
	per := map[string][]string{}
	dups, unexplained := 0, 0
	for _, u := range ex.Updates() {
		id := u.Status.TaskID.Value
		state := strings.TrimPrefix(u.Status.GetState().String(), "TASK_")
		switch {
		case u.Generated && undelivered[id]:
		case u.Generated:
			s.failf("task %s: the agent had to generate %s itself (%s): an update was lost", id, state, u.Status.GetMessage())
		case u.Duplicate:
			dups++
			if !unacked[string(u.Status.UUID)] {
				unexplained++
			}
		case u.Dropped:
			s.failf("task %s: update %s after its terminal update", id, state)
		default:
			per[id] = append(per[id], state)
		}
	}
	if unexplained > 0 {
		s.failf("%d updates were sent again without being listed as unacknowledged in a SUBSCRIBE (acknowledged more than once)", unexplained)
	}
	terminals := 0
	for _, t := range tasks {
		if undelivered[t.id] {
			continue
		}
		got := per[t.id]
		n := 0
		for _, st := range got {
			if terminalState(st) {
				n++
			}
		}
		want := strings.TrimPrefix(t.want.String(), "TASK_")
		switch {
		case n != 1:
			s.failf("task %s: %d terminal updates (%v), want exactly one", t.id, n, got)
		case got[len(got)-1] != want:
			s.failf("task %s: ended %s, want %s (%v)", t.id, got[len(got)-1], want, got)
		default:
			terminals++
		}
	}
	s.logf("%d subscriptions carrying %d unacknowledged updates, %d first-time updates, %d duplicates (all listed as unacknowledged); %d of %d delivered tasks ended once, as they should",
		len(ex.Subscriptions()), replayed, countUpdates(per), dups, terminals, len(tasks)-len(undelivered))
	return nil
}

func countUpdates(per map[string][]string) int {
	n := 0
	for _, l := range per {
		n += len(l)
	}
	return n
}

func terminalState(s string) bool {
	switch s {
	case "FINISHED", "FAILED", "KILLED", "ERROR", "LOST", "DROPPED", "GONE", "GONE_BY_OPERATOR":
		return true
	}
	return false
}
