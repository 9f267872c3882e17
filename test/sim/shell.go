package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runShell is heron-shell: /health, /pid/<name> and /killexecutor's
// instance-restart path, on --port.
func runShell(ctx context.Context, args []string) error {
	m, err := strictFlags("heron-shell", args, "port", "log_file_prefix", "secret")
	if err != nil {
		return err
	}
	port, err := portOf(m, "port")
	if err != nil {
		return err
	}
	// The process name is that of its log: heron-shell-<shard>.log.
	name := strings.TrimSuffix(filepath.Base(m["log_file_prefix"]), ".log")
	d, err := startDaemon(ctx, name)
	if err != nil {
		return err
	}
	l, err := listen(port)
	if err != nil {
		return fmtErr(name, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if d.unhealthy {
			http.Error(w, "injected unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Heron is running")
	})
	mux.HandleFunc("/pid/", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(strings.TrimPrefix(r.URL.Path, "/pid/") + ".pid")
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	kill := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		id := r.FormValue("instance_id_to_restart")
		if id == "" || strings.HasPrefix(id, "heron-executor") {
			// Heron signals the executor's process group; egret's executor
			// stops its daemons itself on SIGTERM.
			fmt.Fprintln(w, "Killing executor")
			syscall.Kill(os.Getppid(), syscall.SIGTERM)
			return
		}
		b, err := os.ReadFile(filepath.Base(id) + ".pid")
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			http.Error(w, "bad pid file", http.StatusInternalServerError)
			return
		}
		syscall.Kill(pid, syscall.SIGTERM)
		fmt.Fprintf(w, "Killed %s (pid %d)\n", id, pid)
	}
	mux.HandleFunc("/killexecutor", kill)
	mux.HandleFunc("/quitquitquit", kill)
	mux.HandleFunc("/abortabortabort", kill)
	g, ctx := newGroup(ctx)
	serveHTTP(ctx, g, l, mux)
	fmt.Printf("%s: serving on port %d\n", name, port)
	<-ctx.Done()
	fmt.Printf("%s: stopping\n", name)
	return g.Wait()
}
