package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// badInput is one malformed input thrown at an egret command.
type badInput struct {
	name  string
	files map[string]string                           // written under the case's directory before the run; {dir} is replaced
	args  []string                                    // egret's arguments; {dir} is the case's directory
	want  []string                                    // what the error must mention (case-insensitive), e.g. the file and the key
	after func(ctx context.Context, dir string) error // what must hold afterwards (nothing half-written)
}

// refuse runs one bad input and checks egret refuses it cleanly: a non-zero exit (not a
// signal), a message naming what is wrong and where, no Go panic or stack trace, no
// process left behind, and nothing half-written.
func (s *scen) refuse(ctx context.Context, env []string, c badInput) {
	dir := filepath.Join(s.dir, c.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.failf("%s: %v", c.name, err)
		return
	}
	sub := func(v string) string { return strings.ReplaceAll(v, "{dir}", dir) }
	for name, body := range c.files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(sub(body)), 0o644); err != nil {
			s.failf("%s: %v", c.name, err)
			return
		}
	}
	bin, err := s.egret(ctx)
	if err != nil {
		s.failf("%v", err)
		return
	}
	var args []string
	for _, a := range c.args {
		args = append(args, sub(a))
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd, err := s.procs.command(cctx, "", bin, args...)
	if err != nil {
		s.failf("%s: %v", c.name, err)
		return
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	out := strings.TrimSpace(string(outb))
	took := time.Since(start).Round(time.Millisecond)
	msg := lastLine(out)
	var ee *exec.ExitError
	switch {
	case cctx.Err() != nil:
		s.failf("%s: egret %s hung (killed after %v)", c.name, strings.Join(args, " "), took)
		return
	case err == nil:
		s.failf("%s: egret %s accepted it (exit 0): %s", c.name, strings.Join(args, " "), msg)
		return
	case !errors.As(err, &ee):
		s.failf("%s: %v", c.name, err)
		return
	case ee.Sys().(syscall.WaitStatus).Signaled():
		s.failf("%s: egret died of %v", c.name, ee.Sys().(syscall.WaitStatus).Signal())
		return
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		s.failf("%s: egret crashed with a stack trace: %.300s", c.name, out)
		return
	}
	var missing []string
	for _, w := range c.want {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(sub(w))) {
			missing = append(missing, fmt.Sprintf("%q", sub(w)))
		}
	}
	if len(missing) > 0 {
		s.failf("%s: the error does not mention %s: %q", c.name, strings.Join(missing, ", "), msg)
	} else {
		s.logf("%s: refused in %v (exit %d): %s", c.name, took, ee.ExitCode(), msg)
	}
	if c.after != nil {
		if err := c.after(ctx, dir); err != nil {
			s.failf("%s: after the refusal: %v", c.name, err)
		}
	}
	if left := s.procs.ours(); len(left) > 0 {
		s.failf("%s: processes left running after the refusal:%s", c.name, psTree(left))
	}
}

// emptyOrAbsent checks that a directory the refused command would have written holds nothing.
func emptyOrAbsent(p string) error {
	ents, err := os.ReadDir(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return fmt.Errorf("%s was written: %s", p, strings.Join(names, ", "))
	}
	return nil
}

// garbage is bytes that are neither YAML nor text.
const garbage = "\x00\x01\xff\xfe{{{[[[::\x7f"
