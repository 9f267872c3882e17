package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"egret/sandbox"
)

// StatusFormatVersion is the version of the status file this package writes.
const StatusFormatVersion = 1

// StatusFile is the content of egret-status-<shard>.json, which the runtime
// rewrites atomically on every change. docs/heron-executor.md documents it.
type StatusFile struct {
	FormatVersion int             `json:"format_version"`
	Topology      string          `json:"topology"`
	TopologyID    string          `json:"topology_id"`
	Shard         int             `json:"shard"`
	ExecutorPID   int             `json:"executor_pid"`
	State         string          `json:"state"` // waiting (no plan yet), running, stopping, stopped, failed
	Error         string          `json:"error,omitempty"`
	PackingPlanID string          `json:"packing_plan_id,omitempty"`
	Updated       time.Time       `json:"updated"`
	Processes     []ProcessStatus `json:"processes"`
}

// ProcessStatus is one daemon in the status file.
type ProcessStatus struct {
	Name       string    `json:"name"`
	PID        int       `json:"pid,omitempty"`
	State      string    `json:"state"` // starting, running, backoff, stopping, stopped, exited, failed
	Restarts   int       `json:"restarts"`
	Started    time.Time `json:"started,omitempty"`
	LastExit   *Exit     `json:"last_exit,omitempty"`
	Health     string    `json:"health,omitempty"` // healthy, unhealthy, unknown ("" when not checked)
	CPUSeconds float64   `json:"cpu_seconds"`      // user+system CPU time of the current run
	RSS        uint64    `json:"rss_bytes"`
	Argv       []string  `json:"argv"`
}

// Exit describes how a process ended.
type Exit struct {
	Code   int    `json:"code"`             // -1 when killed by a signal
	Signal string `json:"signal,omitempty"` // e.g. "killed", "terminated"
	Error  string `json:"error,omitempty"`  // the process could not be started`
}

// ReadStatus reads a status file, refusing a newer format.
func ReadStatus(path string) (*StatusFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s StatusFile
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.FormatVersion != StatusFormatVersion {
		return nil, fmt.Errorf("%s: format_version %d, this egret reads %d", path, s.FormatVersion, StatusFormatVersion)
	}
	return &s, nil
}

// StatusFileName is the status file of a shard, relative to its sandbox.
func StatusFileName(shard int) string { return sandbox.StatusFileName(shard) }

// writeAtomic writes data to path through a temporary file in the same
// directory, fsync and rename, so readers never see a partial file.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
