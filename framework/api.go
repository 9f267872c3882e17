package framework

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Backend carries out the scheduler API's requests. Bodies are Heron's
// protobuf messages (KillTopologyRequest, RestartTopologyRequest,
// UpdateTopologyRequest) and the answers SchedulerResponse bytes; the
// backend owns that encoding, the server only HTTP and access.
type Backend interface {
	Kill(ctx context.Context, body []byte) ([]byte, error)
	Restart(ctx context.Context, body []byte) ([]byte, error)
	Update(ctx context.Context, body []byte) ([]byte, error)
	Status(ctx context.Context) (any, error)
}

// TokenHeader carries the shared token from clients that are not on loopback.
const TokenHeader = "X-Egret-Token"

// APIServer serves Heron's scheduler API (POST /kill, /restart, /update with
// protobuf bodies, answered 200 with a SchedulerResponse) and GET /status
// (JSON). Requests from off loopback must carry the shared token.
type APIServer struct {
	Backend Backend
	// Token is required from non-loopback clients; empty refuses them.
	Token string
	// Timeout bounds one request (kill waits for every task; default 2m).
	Timeout time.Duration
}

// loopback reports whether a request comes from this host's loopback.
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Allowed decides access: loopback always, others with the right token.
func Allowed(fromLoopback bool, token, presented string) bool {
	if fromLoopback {
		return true
	}
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(presented)) == 1
}

// Handler returns the API's routes.
func (s *APIServer) Handler() http.Handler {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	mux := http.NewServeMux()
	guard := func(method string, h func(ctx context.Context, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !Allowed(loopback(r), s.Token, r.Header.Get(TokenHeader)) {
				http.Error(w, "egret scheduler API: a client off loopback needs the shared token (heron.mesos.scheduler.token) in "+TokenHeader, http.StatusForbidden)
				return
			}
			if r.Method != method {
				w.Header().Set("Allow", method)
				http.Error(w, "use "+method, http.StatusMethodNotAllowed)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			h(ctx, w, r)
		}
	}
	proto := func(f func(context.Context, []byte) ([]byte, error)) func(context.Context, http.ResponseWriter, *http.Request) {
		return func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			// Heron's handlers always answer 200 with a SchedulerResponse;
			// its status says whether the request worked.
			resp, _ := f(ctx, body)
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(resp)
		}
	}
	mux.HandleFunc("/kill", guard(http.MethodPost, proto(s.Backend.Kill)))
	mux.HandleFunc("/restart", guard(http.MethodPost, proto(s.Backend.Restart)))
	mux.HandleFunc("/update", guard(http.MethodPost, proto(s.Backend.Update)))
	mux.HandleFunc("/status", guard(http.MethodGet, func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		st, err := s.Backend.Status(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	}))
	return mux
}

// Serve serves the API on l until ctx ends.
func (s *APIServer) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("scheduler API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CheckListen refuses a non-loopback API address without a token.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("scheduler API address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return nil
	}
	if token == "" {
		return fmt.Errorf("scheduler API address %q is reachable off loopback: set heron.mesos.scheduler.token so that only holders of the token can kill, restart or update", addr)
	}
	return nil
}
