package localsched

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// logPath picks the log to print: the scheduler's (container -1), a
// container's executor log, or the log of one of its processes (a file in
// the sandbox or in its log directory whose name starts with the process name).
func logPath(wd workdir, container int, process string) (string, error) {
	if container < 0 {
		return wd.logFile(), nil
	}
	dir := wd.container(container)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no container %d in %s", container, wd)
	}
	if process == "" {
		return wd.executorLog(container), nil
	}
	var found []string
	for _, d := range []string{dir, filepath.Join(dir, "log-files")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if !e.IsDir() && strings.HasPrefix(e.Name(), process) && !strings.HasSuffix(e.Name(), ".pid") {
				found = append(found, filepath.Join(d, e.Name()))
			}
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("no log of process %q in container %d (%s)", process, container, dir)
	}
	// The current log: the shortest name (rotated files carry a suffix).
	sort.Slice(found, func(i, j int) bool {
		return len(found[i]) < len(found[j]) || (len(found[i]) == len(found[j]) && found[i] < found[j])
	})
	return found[0], nil
}

// printFile copies a file to w; with follow it then waits for appended data
// (inotify, no polling) until ctx ends.
func printFile(ctx context.Context, w io.Writer, path string, follow bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("log %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("follow %s: %w", path, err)
	}
	in := os.NewFile(uintptr(fd), "inotify")
	defer in.Close()
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err != nil {
		return fmt.Errorf("follow %s: %w", path, err)
	}
	stop := context.AfterFunc(ctx, func() { in.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		n, err := in.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("follow %s: %w", path, err)
		}
		_ = n
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
