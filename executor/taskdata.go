package executor

import (
	"encoding/json"
	"fmt"
	"strings"
)

// TaskDataVersion is the format_version of TaskData this executor understands.
const TaskDataVersion = 1

// TaskData is the JSON in TaskInfo.data of a task that runs one Heron container. The framework
// writes it; the executor reads it. A task without data is a plain command task.
type TaskData struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"` // "heron-container"
	Topology      string `json:"topology"`
	TopologyID    string `json:"topology_id,omitempty"`
	Shard         int    `json:"shard"`
	// ExecutorFlags are heron-executor's flags (--key=value), as Heron's scheduler passes them.
	ExecutorFlags []string `json:"executor_flags"`
	// URIs are fetched into the sandbox before the container starts: at least the core
	// release and the topology package.
	URIs []TaskURI `json:"uris"`
}

// TaskURI is one artifact to fetch into the sandbox.
type TaskURI struct {
	URI        string `json:"uri"`
	Checksum   string `json:"checksum,omitempty"` // "sha256:<hex>"; verified before use
	Extract    bool   `json:"extract,omitempty"`
	Executable bool   `json:"executable,omitempty"`
	OutputFile string `json:"output_file,omitempty"` // relative to the sandbox
	Cache      bool   `json:"cache,omitempty"`
}

// KindHeronContainer is TaskData.Kind of a Heron container task.
const KindHeronContainer = "heron-container"

// ParseTaskData decodes and checks task data; errors name the field at fault.
func ParseTaskData(b []byte) (*TaskData, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var td TaskData
	if err := dec.Decode(&td); err != nil {
		return nil, fmt.Errorf("task data: %w", err)
	}
	if td.FormatVersion != TaskDataVersion {
		return nil, fmt.Errorf("task data: format_version %d, this executor reads %d", td.FormatVersion, TaskDataVersion)
	}
	var problems []string
	if td.Kind != KindHeronContainer {
		problems = append(problems, fmt.Sprintf("kind %q: want %q", td.Kind, KindHeronContainer))
	}
	if td.Topology == "" {
		problems = append(problems, "topology is empty")
	}
	if td.Shard < 0 {
		problems = append(problems, fmt.Sprintf("shard %d is negative", td.Shard))
	}
	for i, u := range td.URIs {
		if u.URI == "" {
			problems = append(problems, fmt.Sprintf("uris[%d].uri is empty", i))
		}
		if u.OutputFile != "" && (strings.HasPrefix(u.OutputFile, "/") || strings.Contains(u.OutputFile, "..")) {
			problems = append(problems, fmt.Sprintf("uris[%d].output_file %q must stay inside the sandbox", i, u.OutputFile))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("task data: %s", strings.Join(problems, "; "))
	}
	return &td, nil
}

// Marshal encodes td with its format version set.
func (td TaskData) Marshal() ([]byte, error) {
	td.FormatVersion = TaskDataVersion
	if td.Kind == "" {
		td.Kind = KindHeronContainer
	}
	return json.Marshal(td)
}
