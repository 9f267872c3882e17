package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// recordVersion is the format_version of a Record.
const recordVersion = 1

// Record is what the framework keeps across scheduler restarts: its
// framework id and each container's task, so that a new scheduler
// re-subscribes as the same framework and reconciles the same tasks.
type Record struct {
	FormatVersion int         `json:"format_version"`
	FrameworkID   string      `json:"framework_id,omitempty"`
	Containers    []Container `json:"containers"`
	// Package is the topology package the containers fetch (written at submit).
	Package *Package `json:"package,omitempty"`
}

// EncodeRecord and DecodeRecord are the one place the record's wire format lives.
func EncodeRecord(r Record) ([]byte, error) {
	r.FormatVersion = recordVersion
	return json.MarshalIndent(r, "", "  ")
}

// DecodeRecord refuses a record written by a newer egret.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("framework record: %w", err)
	}
	if r.FormatVersion != recordVersion {
		return Record{}, fmt.Errorf("framework record: format_version %d, this egret reads %d", r.FormatVersion, recordVersion)
	}
	return r, nil
}

// Store keeps the Record. Load returns (nil, nil) when there is none.
type Store interface {
	Load(ctx context.Context) (*Record, error)
	Save(ctx context.Context, r Record) error
}

// MemoryStore is a Store in memory, for tests and dry runs.
type MemoryStore struct {
	mu sync.Mutex
	b  []byte
}

// Load returns the saved record.
func (s *MemoryStore) Load(ctx context.Context) (*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		return nil, nil
	}
	r, err := DecodeRecord(s.b)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Save replaces the record.
func (s *MemoryStore) Save(ctx context.Context, r Record) error {
	b, err := EncodeRecord(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
	return nil
}
