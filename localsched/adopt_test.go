package localsched

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestDecideAdoption(t *testing.T) {
	live := map[int]uint64{100: 5, 200: 7, 300: 9}
	running := func(pid int, start uint64) bool { s, ok := live[pid]; return ok && s == start }
	tests := []struct {
		name     string
		wanted   []int
		recorded map[int]execRecord
		want     adoption
	}{
		{"fresh start", []int{0, 1, 2}, nil, adoption{Start: []int{0, 1, 2}}},
		{"all adopted", []int{0, 1}, map[int]execRecord{0: {Pid: 100, StartTime: 5}, 1: {Pid: 200, StartTime: 7}}, adoption{Adopt: []int{0, 1}}},
		{"recycled pid is not adopted", []int{0, 1}, map[int]execRecord{0: {Pid: 100, StartTime: 5}, 1: {Pid: 200, StartTime: 8}}, adoption{Adopt: []int{0}, Start: []int{1}}},
		{"dead executor restarted", []int{0, 1}, map[int]execRecord{0: {Pid: 100, StartTime: 5}, 1: {Pid: 999, StartTime: 1}}, adoption{Adopt: []int{0}, Start: []int{1}}},
		{"unwanted running stopped", []int{0}, map[int]execRecord{0: {Pid: 100, StartTime: 5}, 3: {Pid: 300, StartTime: 9}}, adoption{Adopt: []int{0}, Stop: []int{3}}},
		{"unwanted dead ignored", []int{0}, map[int]execRecord{0: {Pid: 100, StartTime: 5}, 3: {Pid: 301, StartTime: 9}}, adoption{Adopt: []int{0}}},
	}
	for _, tt := range tests {
		got := decideAdoption(tt.wanted, tt.recorded, running)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: decideAdoption(%v, %v) = %+v, want %+v", tt.name, tt.wanted, tt.recorded, got, tt.want)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	p := restartPolicy{Initial: 100 * time.Millisecond, Max: time.Second, Budget: 3, Window: time.Minute}
	now := time.Unix(1000, 0)
	ago := func(d ...time.Duration) []time.Time {
		var out []time.Time
		for _, x := range d {
			out = append(out, now.Add(-x))
		}
		return out
	}
	tests := []struct {
		failures []time.Time
		delay    time.Duration
		ok       bool
	}{
		{nil, 100 * time.Millisecond, true},
		{ago(time.Second), 100 * time.Millisecond, true},
		{ago(2*time.Second, time.Second), 200 * time.Millisecond, true},
		{ago(3*time.Second, 2*time.Second, time.Second), 400 * time.Millisecond, true},
		{ago(4*time.Second, 3*time.Second, 2*time.Second, time.Second), 0, false},
		{ago(5*time.Minute, 4*time.Minute, 3*time.Minute, time.Second), 100 * time.Millisecond, true}, // old failures forgotten
	}
	for i, tt := range tests {
		d, ok := p.next(tt.failures, now)
		if d != tt.delay || ok != tt.ok {
			t.Errorf("case %d: next(%d failures) = %v, %v; want %v, %v", i, len(tt.failures), d, ok, tt.delay, tt.ok)
		}
	}
	big := restartPolicy{Initial: time.Second, Max: 5 * time.Second, Budget: 100, Window: time.Hour}
	var many []time.Time
	for i := 0; i < 20; i++ {
		many = append(many, now.Add(-time.Duration(i)*time.Second))
	}
	if d, _ := big.next(many, now); d != 5*time.Second {
		t.Errorf("next(20 failures) = %v, want the 5s cap", d)
	}
}

func TestPlanDiff(t *testing.T) {
	tests := []struct{ cur, pro, add, rem []int }{
		{[]int{1, 2}, []int{1, 2, 3}, []int{3}, nil},
		{[]int{1, 2, 3}, []int{1}, nil, []int{2, 3}},
		{[]int{1, 2}, []int{1, 2}, nil, nil},
	}
	for _, tt := range tests {
		a, r := planDiff(tt.cur, tt.pro)
		if fmt.Sprint(a) != fmt.Sprint(tt.add) || fmt.Sprint(r) != fmt.Sprint(tt.rem) {
			t.Errorf("planDiff(%v, %v) = %v, %v; want %v, %v", tt.cur, tt.pro, a, r, tt.add, tt.rem)
		}
	}
}

func TestParseStatStartTime(t *testing.T) {
	line := "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100"
	got, err := parseStatStartTime(line)
	if err != nil || got != 987654 {
		t.Errorf("parseStatStartTime(...) = %d, %v; want 987654", got, err)
	}
	if _, err := parseStatStartTime("garbage"); err == nil {
		t.Errorf("parseStatStartTime(garbage) succeeded, want an error")
	}
}
