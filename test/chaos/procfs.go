package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// procInfo is what the suite reads of one process in /proc/PID/stat.
type procInfo struct {
	PID       int
	PPID      int
	PGID      int
	State     byte   // R, S, D, Z, T, ...
	Comm      string // the kernel's short name, for reports only
	StartTime uint64 // clock ticks after boot: with PID, identifies a process across reuse
}

// readProc reads /proc/PID/stat. The comm field may hold spaces and parentheses,
// so the fields after it are found from the last ')'.
func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procInfo, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: no comm field", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	// After comm: state(3) ppid(4) pgrp(5) ... starttime(22); f[0] is field 3.
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %d fields after comm, want at least 20", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(f[0]) != 1 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: malformed fields %q", pid, f[:20])
	}
	return procInfo{PID: pid, PPID: ppid, PGID: pgid, State: f[0][0], Comm: string(b[open+1 : end]), StartTime: start}, nil
}

// allProcs reads every process in /proc. Processes that exit while it reads are skipped.
func allProcs() map[int]procInfo {
	ents, _ := os.ReadDir("/proc")
	out := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			out[pid] = p
		}
	}
	return out
}

// descendants returns every live descendant of root (root excluded), sorted, from one
// snapshot of the process table.
func descendants(procs map[int]procInfo, root int) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	sort.Ints(out)
	return out
}

// zombiesUnder returns the zombie processes whose parent is one of parents: a process
// that a living egret process started and has not reaped.
func zombiesUnder(procs map[int]procInfo, parents []int) []procInfo {
	set := map[int]bool{}
	for _, p := range parents {
		set[p] = true
	}
	var out []procInfo
	for _, p := range procs {
		if p.State == 'Z' && set[p.PPID] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// fdCount is the number of open file descriptors of pid.
func fdCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// rssBytes is the resident set size of pid (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc/%d/status: odd VmRSS %q", pid, v)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS (a zombie?)", pid)
}

// cmdline returns the argv of pid.
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// hasEnv reports whether pid's initial environment holds the exact entry kv.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// cwdUnder reports whether pid's working directory lies under dir.
func cwdUnder(pid int, dir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, cwd)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// describe is a short description of a process for reports: pid, comm and argv.
func describe(pid int) string {
	p, err := readProc(pid)
	if err != nil {
		return fmt.Sprintf("pid %d (gone)", pid)
	}
	argv := strings.Join(cmdline(pid), " ")
	if len(argv) > 160 {
		argv = argv[:160] + "…"
	}
	return fmt.Sprintf("pid %d [%c] %s: %s", pid, p.State, p.Comm, argv)
}

func itoa(i int) string { return strconv.Itoa(i) }

// fdKinds counts pid's open descriptors by what they point at: socket, pipe, an
// anonymous inode kind, or a file's path.
func fdKinds(pid int) map[string]int {
	out := map[string]int{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(t, "socket:"):
			t = "socket"
		case strings.HasPrefix(t, "pipe:"):
			t = "pipe"
		}
		out[t]++
	}
	return out
}

// fdGrowth describes which kinds of descriptors grew from before to after.
func fdGrowth(before, after map[string]int) string {
	var parts []string
	for k, n := range after {
		if n > before[k] {
			parts = append(parts, fmt.Sprintf("%s +%d", k, n-before[k]))
		}
	}
	sort.Strings(parts)
	if len(parts) > 6 {
		parts = append(parts[:6], "…")
	}
	return strings.Join(parts, ", ")
}
