package statemgr

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a manager starts (watches, inotify readers, session followers) ends with Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
