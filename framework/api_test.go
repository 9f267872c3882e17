package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		loop             bool
		token, presented string
		want             bool
	}{
		{true, "", "", true},
		{true, "s3cret", "", true},
		{false, "", "", false},
		{false, "", "anything", false},
		{false, "s3cret", "", false},
		{false, "s3cret", "wrong", false},
		{false, "s3cret", "s3cret", true},
	} {
		if got := Allowed(tc.loop, tc.token, tc.presented); got != tc.want {
			t.Errorf("Allowed(%v, %q, %q) = %v, want %v", tc.loop, tc.token, tc.presented, got, tc.want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:0", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"0.0.0.0:8080", "t", true},
		{"nonsense", "t", false},
	} {
		if err := CheckListen(tc.addr, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok %v", tc.addr, tc.token, err, tc.ok)
		}
	}
}

type fakeBackend struct{ got []string }

func (f *fakeBackend) Kill(ctx context.Context, b []byte) ([]byte, error) {
	f.got = append(f.got, "kill:"+string(b))
	return []byte("ok-kill"), nil
}
func (f *fakeBackend) Restart(ctx context.Context, b []byte) ([]byte, error) {
	f.got = append(f.got, "restart:"+string(b))
	return []byte("notok"), errors.New("no such container")
}
func (f *fakeBackend) Update(ctx context.Context, b []byte) ([]byte, error) {
	f.got = append(f.got, "update:"+string(b))
	return []byte("ok-update"), nil
}
func (f *fakeBackend) Status(ctx context.Context) (any, error) {
	return map[string]int{"containers": 2}, nil
}

func TestAPIServer(t *testing.T) {
	be := &fakeBackend{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&APIServer{Backend: be, Token: "t"}).Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	for _, tc := range []struct{ path, body, want string }{
		{"/kill", "K", "ok-kill"}, {"/restart", "R", "notok"}, {"/update", "U", "ok-update"},
	} {
		res, err := http.Post(base+tc.path, "application/x-www-form-urlencoded", bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != tc.want {
			t.Errorf("POST %s = %d %q, want 200 %q (Heron answers 200 and says NOTOK in the body)", tc.path, res.StatusCode, b, tc.want)
		}
	}
	res, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]int
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st["containers"] != 2 {
		t.Errorf("GET /status = %v, %v", st, err)
	}
	res.Body.Close()
	res, err = http.Get(base + "/kill")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /kill = %d, want 405", res.StatusCode)
	}
	if got := len(be.got); got != 3 {
		t.Errorf("backend saw %v", be.got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}
