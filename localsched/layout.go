package localsched

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// workdir is one topology's working directory:
//
//	<wd>/scheduler.lock         held (flock) by the running daemon
//	<wd>/scheduler.log          the daemon's log
//	<wd>/scheduler-state.json   what the daemon knows of its executors, for the next daemon
//	<wd>/container-<i>/         one sandbox per container (layout owned by package sandbox)
type workdir string

func (w workdir) lockFile() string  { return filepath.Join(string(w), "scheduler.lock") }
func (w workdir) logFile() string   { return filepath.Join(string(w), "scheduler.log") }
func (w workdir) stateFile() string { return filepath.Join(string(w), "scheduler-state.json") }
func (w workdir) container(i int) string {
	return filepath.Join(string(w), "container-"+strconv.Itoa(i))
}

// executorLog is where an executor's own stdout and stderr go, in its sandbox.
func (w workdir) executorLog(i int) string {
	return filepath.Join(w.container(i), "heron-executor-"+strconv.Itoa(i)+".stderr")
}

const stateFormatVersion = 1

// persisted is the daemon's record of its executors (scheduler-state.json).
type persisted struct {
	FormatVersion int                `json:"format_version"`
	Topology      string             `json:"topology"`
	SchedulerPid  int                `json:"scheduler_pid"`
	HTTPEndpoint  string             `json:"http_endpoint"`
	Executors     map[int]execRecord `json:"executors"`
}

// readPersisted reads scheduler-state.json; a missing file is an empty record.
func readPersisted(path string) (persisted, error) {
	var p persisted
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return persisted{FormatVersion: stateFormatVersion, Executors: map[int]execRecord{}}, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if p.FormatVersion > stateFormatVersion {
		return p, fmt.Errorf("%s: format_version %d is newer than this egret's %d", path, p.FormatVersion, stateFormatVersion)
	}
	if p.Executors == nil {
		p.Executors = map[int]execRecord{}
	}
	return p, nil
}

// writePersisted replaces scheduler-state.json atomically: a crash leaves the
// old record or the new one, never half of one.
func writePersisted(path string, p persisted) error {
	p.FormatVersion = stateFormatVersion
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
