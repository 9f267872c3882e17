// Package sandbox owns the layout of one Heron container's directory: where the
// core release, the configuration, the topology package, the logs, the pid files
// and egret's own status files are. Nothing else in egret joins these paths by
// hand; it asks a Sandbox.
//
// The layout is Heron's (heron-reference section 1.10 and 7):
//
//	ROOT/
//	  heron-core/                 the unpacked core release (bin/, lib/, release.yaml)
//	  heron-conf/                 the cluster configuration handed to the container
//	  <topology>.defn             the topology definition
//	  <topology binary>           the topology package's jar, tar or pex
//	  log-files/                  daemon output (rotated)
//	  <process>.pid               one per daemon
//	  heron-executor-<shard>.stdout
//	  egret-status-<shard>.json   egret's status file (heron/container owns its schema)
package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Sandbox is one container's directory.
type Sandbox struct {
	root string
}

// New returns the sandbox rooted at dir (made absolute); it creates nothing.
func New(dir string) (*Sandbox, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", dir, err)
	}
	return &Sandbox{root: abs}, nil
}

// Root is the sandbox's directory.
func (s *Sandbox) Root() string { return s.root }

// HeronCore is the unpacked core release.
func (s *Sandbox) HeronCore() string { return filepath.Join(s.root, "heron-core") }

// HeronConf is the configuration directory handed to the container.
func (s *Sandbox) HeronConf() string { return filepath.Join(s.root, "heron-conf") }

// LogDir is where daemons' output goes (heron.logging.directory, "log-files").
func (s *Sandbox) LogDir() string { return filepath.Join(s.root, "log-files") }

// PidFile is the pid file Heron's tools expect for a process name.
func (s *Sandbox) PidFile(process string) string { return filepath.Join(s.root, process+".pid") }

// ExecutorStdout is heron-executor's own output file for a shard.
func (s *Sandbox) ExecutorStdout(shard int) string {
	return filepath.Join(s.root, "heron-executor-"+strconv.Itoa(shard)+".stdout")
}

// StatusFile is egret's status file for a shard.
func (s *Sandbox) StatusFile(shard int) string { return filepath.Join(s.root, StatusFileName(shard)) }

// StatusFileName is the status file's name, for those that look in many
// sandboxes (Heron's own local scheduler runs every shard in one directory).
func StatusFileName(shard int) string { return "egret-status-" + strconv.Itoa(shard) + ".json" }

// TopologyDefn is the topology definition file.
func (s *Sandbox) TopologyDefn(topology string) string {
	return filepath.Join(s.root, topology+".defn")
}

// File is a file at the sandbox's top level (the topology binary, say); name
// must be a plain file name.
func (s *Sandbox) File(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("sandbox %s: %q is not a plain file name", s.root, name)
	}
	return filepath.Join(s.root, name), nil
}

// Create makes the sandbox's directories (the root and log-files/).
func (s *Sandbox) Create() error {
	for _, d := range []string{s.root, s.LogDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// Check reports every part of the layout a container needs that is missing.
func (s *Sandbox) Check() error {
	var errs []error
	for _, p := range []string{s.root, s.HeronCore(), filepath.Join(s.HeronCore(), "bin"), s.HeronConf(), s.LogDir()} {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("sandbox: %w", err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("sandbox: %s is not a directory", p))
		}
	}
	return errors.Join(errs...)
}

// DiskUsage is the bytes of the files in the sandbox. Files hard-linked from the
// fetch cache count here too, though they take no extra disk.
func (s *Sandbox) DiskUsage() (int64, error) {
	var n int64
	err := filepath.WalkDir(s.root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a rotated log)
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sandbox disk usage: %w", err)
	}
	return n, nil
}

// Remove deletes the sandbox and everything in it.
func (s *Sandbox) Remove() error {
	if s.root == "/" || s.root == "" {
		return fmt.Errorf("sandbox: refusing to remove %q", s.root)
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}
