package fetcher

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"
	"testing"
)

// TestTransient: which failures are worth another attempt. A full disk is not:
// before, *fs.PathError passed for a net.Error and a fetch onto a full disk was
// retried until its deadline, then reported as "context deadline exceeded".
func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"disk full", fmt.Errorf("error downloading: %w", &fs.PathError{Op: "write", Path: "/c/tmp/blob", Err: syscall.ENOSPC}), false},
		{"quota", &fs.PathError{Op: "write", Path: "/c/tmp/blob", Err: syscall.EDQUOT}, false},
		{"read-only", &fs.PathError{Op: "open", Path: "/c/tmp/blob", Err: syscall.EROFS}, false},
		{"file too large", &fs.PathError{Op: "write", Path: "/c/tmp/blob", Err: syscall.EFBIG}, false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"body cut short", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"server error", &HTTPError{Status: 503}, true},
		{"not found", &HTTPError{Status: 404}, false},
		{"checksum", &ChecksumError{Type: "sha256", Want: "a", Got: "b"}, false},
		{"other", errors.New("something else"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.give); got != tt.want {
			t.Errorf("transient(%s: %v) = %v, want %v", tt.name, tt.give, got, tt.want)
		}
	}
}
