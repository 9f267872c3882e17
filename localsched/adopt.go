package localsched

import (
	"sort"
	"time"
)

// execRecord is what the daemon remembers of one container's executor across
// its own restarts.
type execRecord struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // clock ticks since boot, from /proc/<pid>/stat
	Ports     []int  `json:"ports"`
	Restarts  int    `json:"restarts"`
}

// adoption says what a (re)starting daemon does with each container.
type adoption struct {
	Adopt []int // recorded, still running, still wanted
	Start []int // wanted, but not running
	Stop  []int // running, no longer wanted (the plan shrank while the daemon was down)
}

// decideAdoption compares the wanted containers with the recorded executors.
// A record counts as running only when its pid still runs with the recorded
// start time, so a recycled pid is never adopted.
func decideAdoption(wanted []int, recorded map[int]execRecord, running func(pid int, start uint64) bool) adoption {
	var a adoption
	want := map[int]bool{}
	for _, c := range wanted {
		want[c] = true
		r, ok := recorded[c]
		if ok && running(r.Pid, r.StartTime) {
			a.Adopt = append(a.Adopt, c)
		} else {
			a.Start = append(a.Start, c)
		}
	}
	for c, r := range recorded {
		if !want[c] && running(r.Pid, r.StartTime) {
			a.Stop = append(a.Stop, c)
		}
	}
	sort.Ints(a.Adopt)
	sort.Ints(a.Start)
	sort.Ints(a.Stop)
	return a
}

// restartPolicy bounds how a dead executor is restarted: exponential backoff
// from Initial up to Max, and at most Budget restarts within Window. An
// executor that has run for Window counts as healthy again.
type restartPolicy struct {
	Initial, Max time.Duration
	Budget       int
	Window       time.Duration
}

var defaultRestartPolicy = restartPolicy{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Budget: 10, Window: 10 * time.Minute}

// next returns the delay before the next restart given the times of the
// failures so far (the latest included, oldest first) and now, or ok=false
// when more than Budget of them fall within Window.
func (p restartPolicy) next(failures []time.Time, now time.Time) (delay time.Duration, ok bool) {
	recent := 0
	for _, f := range failures {
		if now.Sub(f) <= p.Window {
			recent++
		}
	}
	if recent > p.Budget {
		return 0, false
	}
	delay = p.Initial
	for i := 1; i < recent && delay < p.Max; i++ {
		delay *= 2
	}
	if delay > p.Max {
		delay = p.Max
	}
	return delay, true
}

// planDiff says which containers an update adds and removes.
func planDiff(current, proposed []int) (added, removed []int) {
	cur, pro := map[int]bool{}, map[int]bool{}
	for _, c := range current {
		cur[c] = true
	}
	for _, c := range proposed {
		pro[c] = true
		if !cur[c] {
			added = append(added, c)
		}
	}
	for _, c := range current {
		if !pro[c] {
			removed = append(removed, c)
		}
	}
	sort.Ints(added)
	sort.Ints(removed)
	return added, removed
}
