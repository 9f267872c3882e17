package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func init() {
	register(scenario{order: 45, name: "malformed-api", timeout: 4 * time.Minute, run: malformedAPI,
		about: "malformed and misdirected requests to a running local scheduler's API (/kill, /restart, /update): each refused with a clear answer, the topology untouched"})
}

// The scheduler API's messages are encoded here with protowire, by Heron's field
// numbers (scheduler.proto), so that the suite can also send what no generated type
// would: wrong wire types, truncations, names of other topologies.
func killRequest(topology string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), topology)
}

func restartRequest(topology string, container int32) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), topology)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(int64(container)))
}

// schedulerResponse decodes SchedulerResponse{status: Status{status, message}}.
func schedulerResponse(b []byte) (code int, msg string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, "", protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			inner, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, "", protowire.ParseError(n)
			}
			b = b[n:]
			for len(inner) > 0 {
				num, typ, n := protowire.ConsumeTag(inner)
				if n < 0 {
					return 0, "", protowire.ParseError(n)
				}
				inner = inner[n:]
				switch {
				case num == 1 && typ == protowire.VarintType:
					v, n := protowire.ConsumeVarint(inner)
					if n < 0 {
						return 0, "", protowire.ParseError(n)
					}
					code, inner = int(v), inner[n:]
				case num == 2 && typ == protowire.BytesType:
					v, n := protowire.ConsumeBytes(inner)
					if n < 0 {
						return 0, "", protowire.ParseError(n)
					}
					msg, inner = string(v), inner[n:]
				default:
					n := protowire.ConsumeFieldValue(num, typ, inner)
					if n < 0 {
						return 0, "", protowire.ParseError(n)
					}
					inner = inner[n:]
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, "", protowire.ParseError(n)
		}
		b = b[n:]
	}
	return code, msg, nil
}

const statusOK = 1 // heron.proto.system.StatusCode.OK

func malformedAPI(ctx context.Context, s *scen) error {
	t, err := s.newTopo("local")
	if err != nil {
		return err
	}
	if err := t.submit(ctx); err != nil {
		return err
	}
	defer t.killAndCheck(ctx)
	before, err := t.waitUp(ctx, nil)
	if err != nil {
		return fmt.Errorf("topology not up: %v", err)
	}
	st, err := t.status(ctx)
	if err != nil {
		return err
	}
	endpoint := ""
	if sch, ok := st["scheduler"].(map[string]any); ok {
		endpoint, _ = sch["endpoint"].(string)
	}
	if endpoint == "" {
		return fmt.Errorf("egret status --json names no scheduler endpoint")
	}
	if !strings.HasPrefix(endpoint, "http") {
		endpoint = "http://" + endpoint
	}
	if !strings.Contains(endpoint, "127.0.0.1") && !strings.Contains(endpoint, "localhost") {
		s.failf("the scheduler API listens on %s, not on loopback", endpoint)
	}
	s.logf("up; the scheduler API is at %s", endpoint)

	nExec := len(before.executors)
	cases := []struct {
		name, method, path string
		body               []byte
		wantHTTP           int // 0: 200 with a NOTOK SchedulerResponse
	}{
		{"kill with random bytes", "POST", "/kill", []byte(garbage), 0},
		{"kill with an empty body (no topology name)", "POST", "/kill", nil, 0},
		{"kill of another topology", "POST", "/kill", killRequest("NotThisOne"), 0},
		{"kill with a truncated body", "POST", "/kill", killRequest(t.name)[:4], 0},
		{"kill with the name as a varint", "POST", "/kill", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7), 0},
		{"kill by GET", "GET", "/kill", nil, http.StatusMethodNotAllowed},
		{"restart of container 999", "POST", "/restart", restartRequest(t.name, 999), 0},
		{"restart of container -2", "POST", "/restart", restartRequest(t.name, -2), 0},
		{fmt.Sprintf("restart of container %d (one past the last)", nExec), "POST", "/restart", restartRequest(t.name, int32(nExec)), 0},
		{"restart of another topology", "POST", "/restart", restartRequest("NotThisOne", 1), 0},
		{"update with no packing plans", "POST", "/update", nil, 0},
		{"update with random bytes", "POST", "/update", []byte(garbage), 0},
		{"update with garbage plans", "POST", "/update", append(
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte(garbage)),
			protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte(garbage))...), 0},
		{"kill with a 20 MiB body", "POST", "/kill", bytes.Repeat([]byte{0x0a}, 20<<20), 0},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range cases {
		req, err := http.NewRequestWithContext(ctx, c.method, endpoint+c.path, bytes.NewReader(c.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			// A refused oversize body may close the connection; anything else is a failure.
			if c.path == "/kill" && len(c.body) > 16<<20 {
				s.logf("%s: connection closed: %v", c.name, err)
				continue
			}
			s.failf("%s: %v", c.name, err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if c.wantHTTP != 0 {
			if resp.StatusCode != c.wantHTTP {
				s.failf("%s: HTTP %d, want %d", c.name, resp.StatusCode, c.wantHTTP)
			} else {
				s.logf("%s: HTTP %d", c.name, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode >= 500 {
			s.failf("%s: HTTP %d (a server error, not a refusal): %.200s", c.name, resp.StatusCode, body)
			continue
		}
		code, msg, err := schedulerResponse(body)
		switch {
		case resp.StatusCode != http.StatusOK && resp.StatusCode < 500:
			s.logf("%s: HTTP %d: %.200s", c.name, resp.StatusCode, strings.TrimSpace(string(body)))
		case err != nil:
			s.failf("%s: HTTP 200 but no SchedulerResponse: %v", c.name, err)
		case code == statusOK:
			s.failf("%s: accepted (OK)", c.name)
		case msg == "":
			s.failf("%s: refused (status %d) with no message saying why", c.name, code)
		default:
			s.logf("%s: refused (status %d): %s", c.name, code, msg)
		}
	}
	if gone := unchanged(before); len(gone) > 0 {
		s.failf("the refused requests stopped or restarted: %s", strings.Join(gone, ", "))
	}
	if _, err := t.waitUp(ctx, &before); err != nil {
		s.failf("after the malformed requests: %v", err)
	} else {
		s.logf("the topology is untouched: same processes, physical plan there")
	}
	return nil
}
