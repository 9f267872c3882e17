package executor

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosrecordio "github.com/mesos/mesos-go/api/v1/lib/recordio"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		give    string
		want    time.Duration
		wantErr string
	}{
		{give: "5secs", want: 5 * time.Second},
		{give: "15mins", want: 15 * time.Minute},
		{give: "1500ms", want: 1500 * time.Millisecond},
		{give: "1.5days", want: 36 * time.Hour},
		{give: "2weeks", want: 14 * 24 * time.Hour},
		{give: "3hrs", want: 3 * time.Hour},
		{give: "10us", want: 10 * time.Microsecond},
		{give: "7ns", want: 7},
		{give: "5s", wantErr: `unknown unit "s"`},
		{give: "5", wantErr: "missing unit"},
		{give: "secs", wantErr: "want a number"},
		{give: "", wantErr: "want a number"},
		{give: "1.2.3secs", wantErr: "bad number"},
		{give: "5 secs", wantErr: `unknown unit " secs"`},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.give)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.give, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		give time.Duration
		want string
	}{
		{2 * time.Second, "2secs"},
		{15 * time.Minute, "15mins"},
		{1500 * time.Millisecond, "1500ms"},
		{0, "0ns"},
		{7 * 24 * time.Hour, "1weeks"},
		{3 * time.Nanosecond, "3ns"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.give); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.give, got, tt.want)
		}
		if back, err := ParseDuration(FormatDuration(tt.give)); err != nil || back != tt.give {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.give, back, err)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	good := []string{
		"MESOS_AGENT_ENDPOINT=127.0.0.1:5051", "MESOS_FRAMEWORK_ID=fw", "MESOS_EXECUTOR_ID=ex",
		"MESOS_DIRECTORY=/sb", "MESOS_SANDBOX=/mnt/sb", "MESOS_CHECKPOINT=1",
		"MESOS_RECOVERY_TIMEOUT=15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX=2secs",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs", "MESOS_EXECUTOR_AUTHENTICATION_TOKEN=secret",
		"PATH=/bin",
	}
	cfg, err := ConfigFromEnv(good)
	if err != nil {
		t.Fatalf("ConfigFromEnv(good) = %v", err)
	}
	if !cfg.Checkpoint || cfg.RecoveryTimeout != 15*time.Minute || cfg.BackoffMax != 2*time.Second ||
		cfg.ShutdownGrace != 5*time.Second || cfg.Sandbox != "/mnt/sb" || cfg.AuthToken != "secret" || cfg.Wire != WireProtobuf {
		t.Errorf("ConfigFromEnv(good) = %+v", cfg)
	}
	for _, kv := range cfg.ChildEnv {
		if strings.HasPrefix(kv, EnvAuthToken) {
			t.Errorf("ChildEnv holds the token: %q", kv)
		}
	}
	if len(cfg.ChildEnv) != len(good)-1 {
		t.Errorf("ChildEnv has %d variables, want %d", len(cfg.ChildEnv), len(good)-1)
	}

	// Every problem at once.
	_, err = ConfigFromEnv([]string{
		"MESOS_AGENT_ENDPOINT=nohost", "MESOS_CHECKPOINT=true", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5s",
	})
	var ee *EnvError
	if !errors.As(err, &ee) {
		t.Fatalf("ConfigFromEnv(bad) = %v, want *EnvError", err)
	}
	for _, want := range []string{
		"MESOS_FRAMEWORK_ID is not set", "MESOS_EXECUTOR_ID is not set", "MESOS_DIRECTORY is not set",
		`MESOS_AGENT_ENDPOINT="nohost"`, `MESOS_CHECKPOINT="true": want 0 or 1`,
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: duration \"5s\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ConfigFromEnv(bad) = %q, missing %q", err, want)
		}
	}
	// Checkpointing requires the recovery variables.
	_, err = ConfigFromEnv([]string{
		"MESOS_AGENT_ENDPOINT=h:1", "MESOS_FRAMEWORK_ID=fw", "MESOS_EXECUTOR_ID=ex", "MESOS_DIRECTORY=/sb",
		"MESOS_CHECKPOINT=1", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs",
	})
	if err == nil || !strings.Contains(err.Error(), "MESOS_RECOVERY_TIMEOUT is not set") ||
		!strings.Contains(err.Error(), "MESOS_SUBSCRIPTION_BACKOFF_MAX is not set") {
		t.Errorf("ConfigFromEnv(checkpoint without recovery) = %v", err)
	}
}

func TestRecordReader(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 5<<20)
	var stream []byte
	stream = AppendRecord(stream, []byte("one"))
	stream = append(stream, "0\n"...) // an empty record is skipped
	stream = AppendRecord(stream, big)
	stream = AppendRecord(stream, []byte("three"))
	// One byte at a time: records must not depend on how the bytes arrive.
	rr := NewRecordReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	for i, want := range [][]byte{[]byte("one"), big, []byte("three")} {
		got, err := rr.ReadFrame()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("record %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	if _, err := rr.ReadFrame(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}

	// mesos-go's writer and reader agree with ours, but its reader stops at 4 MiB.
	var buf bytes.Buffer
	if err := mesosrecordio.NewWriter(&buf).WriteFrame(big); err != nil {
		t.Fatal(err)
	}
	if got, err := NewRecordReader(bytes.NewReader(buf.Bytes()), 0).ReadFrame(); err != nil || len(got) != len(big) {
		t.Errorf("our reader on mesos-go's 5 MiB record: %d, %v", len(got), err)
	}
	if _, err := mesosrecordio.NewReader(bytes.NewReader(buf.Bytes())).ReadFrame(); err == nil {
		t.Errorf("mesos-go's reader read a 5 MiB record; the reason for our own reader is gone")
	}

	tests := []struct {
		give    string
		max     int
		wantErr string
	}{
		{give: "3\nab", wantErr: "after 2 of 3 payload bytes"},
		{give: "1x\na", wantErr: "not a decimal digit"},
		{give: "\nabc", wantErr: "empty"},
		{give: "12", wantErr: "inside a record length"},
		{give: "11\nhello world", max: 10, wantErr: "exceeds the limit of 10"},
		{give: "123456789012345678901\n", wantErr: "more than 20 digits"},
	}
	for _, tt := range tests {
		_, err := NewRecordReader(strings.NewReader(tt.give), tt.max).ReadFrame()
		var se *StreamError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ReadFrame(%q) = %v, want a StreamError containing %q", tt.give, err, tt.wantErr)
		}
	}
}

func TestKillDecisions(t *testing.T) {
	sec := func(n int64) *mesos.KillPolicy {
		return &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: n * int64(time.Second)}}
	}
	tests := []struct {
		event, task *mesos.KillPolicy
		want        time.Duration
	}{
		{nil, nil, 3 * time.Second},
		{nil, sec(10), 10 * time.Second},
		{sec(1), sec(10), time.Second},
		{&mesos.KillPolicy{}, sec(10), 10 * time.Second}, // a policy without grace says nothing
		{sec(-5), nil, 0},
	}
	for _, tt := range tests {
		if got := killGrace(tt.event, tt.task, 3*time.Second); got != tt.want {
			t.Errorf("killGrace(%v, %v) = %v, want %v", tt.event, tt.task, got, tt.want)
		}
	}

	now := time.Unix(1000, 0)
	cur := now.Add(10 * time.Second)
	if d, ch := shortenKill(time.Time{}, false, now, 5*time.Second); !ch || !d.Equal(now.Add(5*time.Second)) {
		t.Errorf("first kill: %v, %v", d, ch)
	}
	if d, ch := shortenKill(cur, true, now, 20*time.Second); ch || !d.Equal(cur) {
		t.Errorf("longer second kill: %v, %v; want unchanged", d, ch)
	}
	if d, ch := shortenKill(cur, true, now, time.Second); !ch || !d.Equal(now.Add(time.Second)) {
		t.Errorf("shorter second kill: %v, %v", d, ch)
	}

	for _, tt := range []struct{ give, want time.Duration }{
		{5 * time.Second, 3 * time.Second}, {10 * time.Second, 8 * time.Second}, {2 * time.Second, time.Second},
	} {
		if got := shutdownKillGrace(tt.give); got != tt.want {
			t.Errorf("shutdownKillGrace(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestHealthVerdict(t *testing.T) {
	// A run of results with limit 3: unhealthy is reported every time, healthy resets.
	results := []bool{false, false, true, false, false, false}
	wantKill := []bool{false, false, false, false, false, true}
	n := 0
	for i, healthy := range results {
		report, kill, next := healthVerdict(healthy, n, 3)
		if !report || kill != wantKill[i] {
			t.Errorf("result %d (healthy=%t, after %d failures): report=%t kill=%t; want report, kill=%t", i, healthy, n, report, kill, wantKill[i])
		}
		n = next
	}
}

func TestUUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		u := newUUID()
		if !ValidUUID(u) || seen[string(u)] {
			t.Fatalf("newUUID() = %x: valid=%t, repeated=%t", u, ValidUUID(u), seen[string(u)])
		}
		seen[string(u)] = true
	}
	if ValidUUID([]byte("0123456789abcdef0123456789abcdef0123")) || ValidUUID(make([]byte, 16)) {
		t.Error("ValidUUID accepts a textual UUID or all zeroes")
	}
}

func TestParseTaskData(t *testing.T) {
	good := TaskData{Topology: "wc", Shard: 1, ExecutorFlags: []string{"--shard=1"},
		URIs: []TaskURI{{URI: "http://x/heron-core.tar.gz", Checksum: "sha256:00", Extract: true}}}
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	td, err := ParseTaskData(b)
	if err != nil || td.Topology != "wc" || td.Kind != KindHeronContainer || td.FormatVersion != 1 {
		t.Errorf("ParseTaskData(Marshal(good)) = %+v, %v", td, err)
	}
	tests := []struct{ give, wantErr string }{
		{`{"format_version":2}`, "format_version 2"},
		{`{"format_version":1,"kind":"x","topology":"","shard":-1}`, `kind "x"`},
		{`{"format_version":1,"kind":"heron-container","topology":"t","uris":[{"uri":""}]}`, "uris[0].uri is empty"},
		{`{"format_version":1,"kind":"heron-container","topology":"t","uris":[{"uri":"u","output_file":"../x"}]}`, "must stay inside the sandbox"},
		{`{"format_version":1,"bogus":1}`, "unknown field"},
		{`not json`, "task data"},
	}
	for _, tt := range tests {
		if _, err := ParseTaskData([]byte(tt.give)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseTaskData(%s) = %v, want error containing %q", tt.give, err, tt.wantErr)
		}
	}
}
