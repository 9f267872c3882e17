package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// bindHost is where the simulated daemons listen: loopback unless
// HERON_SIM_BIND says otherwise (for daemons reached from other hosts).
func bindHost() string {
	if h := os.Getenv("HERON_SIM_BIND"); h != "" {
		return h
	}
	return "127.0.0.1"
}

// advertiseHost is the host published in the state tree: 127.0.0.1 when the
// daemons bind loopback (the local clusters), otherwise the executor's --myhost.
func advertiseHost(myhost string) string {
	if h := bindHost(); h == "127.0.0.1" || h == "localhost" || myhost == "" {
		return "127.0.0.1"
	}
	return myhost
}

func listen(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(bindHost(), strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("bind port %d: %w", port, err)
	}
	return l, nil
}

// group runs goroutines that stop with ctx, and collects the first error.
type group struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
	stop context.CancelFunc
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{stop: cancel}, ctx
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err; g.stop() })
		}
	}()
}

func (g *group) Wait() error { g.wg.Wait(); g.stop(); return g.err }

// serveTCP accepts and holds connections on l until ctx ends: enough for a
// TCP health check and for peers that only need something to connect to.
// An unhealthy daemon closes its listener, so checks are refused.
func (d *daemon) serveTCP(ctx context.Context, g *group, l net.Listener) {
	if d.unhealthy {
		l.Close()
		return
	}
	g.Go(func() error {
		<-ctx.Done()
		return l.Close()
	})
	g.Go(func() error {
		for {
			c, err := l.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("accept: %w", err)
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	})
}

// serveHTTP serves h on l until ctx ends.
func serveHTTP(ctx context.Context, g *group, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			return err
		}
		return nil
	})
}
