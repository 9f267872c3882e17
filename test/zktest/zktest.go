// Package zktest runs a real ZooKeeper server (Debian's zookeeper package) on a free loopback
// port with a temporary data directory, for tests. The server is a java process started
// directly with ZooKeeperServerMain; it is killed by pid when the test ends.
//
// Clients connect through a small TCP proxy (Addr), so a test can cut them off (Partition)
// while the server keeps running, which is how a session is made to expire on purpose.
package zktest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TickTime is the server's tick: sessions may last from 2 to 20 ticks (0.2 s to 2 s).
const TickTime = 100 * time.Millisecond

// MaxSessionTimeout is the longest session the server grants.
const MaxSessionTimeout = 20 * TickTime

// Jar is Debian's ZooKeeper server jar; its manifest names the jars it needs.
var Jar = "/usr/share/java/zookeeper.jar"

// Server is a running ZooKeeper server and the proxy in front of it.
type Server struct {
	t       testing.TB
	dir     string
	port    int // the server's own port
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	ln     net.Listener
	cut    bool
	cns    map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// Start starts a server and registers its end with t.Cleanup. A missing installation fails
// the test with the command that installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Jar); err != nil {
		t.Fatalf("zktest: ZooKeeper is not installed (%v); run `make zookeeper` or apt-get install zookeeper", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("zktest: java is not installed: %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), cns: map[net.Conn]struct{}{}}
	s.port = freePort(t)
	cfg := fmt.Sprintf("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\n"+
		"minSessionTimeout=%d\nmaxSessionTimeout=%d\n",
		TickTime.Milliseconds(), filepath.Join(s.dir, "data"), s.port,
		(2 * TickTime).Milliseconds(), MaxSessionTimeout.Milliseconds())
	if err := os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	s.logPath = filepath.Join(s.dir, "zookeeper.log")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zktest: proxy: %v", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zktest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the address clients use (the proxy), host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ServerAddr is the server's own address, bypassing the proxy.
func (s *Server) ServerAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *Server) start() error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zktest: %w", err)
	}
	defer log.Close()
	cmd := exec.Command("java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.jmx.log4j.disable=true", "-cp", Jar,
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(s.dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zktest: start java: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	// No event tells when the server serves: ask it ("srvr") until it reports its mode, with a deadline.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("zktest: ZooKeeper exited at start; log:\n%s", s.logTail())
		default:
		}
		if out, err := s.FourLetter("srvr"); err == nil && strings.Contains(out, "Mode: standalone") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("zktest: ZooKeeper did not answer within 60s; log:\n%s", s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// FourLetter sends a four-letter command to the server and returns its answer.
func (s *Server) FourLetter(cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", s.ServerAddr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// kill ends the java process by its pid (and its process group) and waits for it.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Stop kills the server (its data stays); clients see the connection drop.
func (s *Server) Stop() {
	s.kill()
	s.dropConns()
}

// Restart stops the server and starts it again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Partition cuts every client off (the server keeps running) until Heal.
func (s *Server) Partition() {
	s.mu.Lock()
	s.cut = true
	s.mu.Unlock()
	s.dropConns()
}

// Heal lets clients connect again.
func (s *Server) Heal() {
	s.mu.Lock()
	s.cut = false
	s.mu.Unlock()
}

// ExpireSession makes the server expire a session: clients are cut off until the server has
// dropped the session (polling its "dump" with a deadline, as nothing announces it), then let back.
func (s *Server) ExpireSession(t testing.TB, id int64) {
	t.Helper()
	s.Partition()
	defer s.Heal()
	deadline := time.Now().Add(MaxSessionTimeout + 20*time.Second)
	for time.Now().Before(deadline) {
		ids, err := s.Sessions()
		if err == nil && !ids[id] {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("zktest: session 0x%x did not expire", id)
}

var sessionRE = regexp.MustCompile(`0x[0-9a-fA-F]+`)

// Sessions returns the ids of the sessions the server tracks.
func (s *Server) Sessions() (map[int64]bool, error) {
	out, err := s.FourLetter("dump")
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	inTracker := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "SessionTracker dump"), strings.HasPrefix(line, "Session Sets"):
			inTracker = true
			continue
		case strings.HasPrefix(line, "ephemeral nodes dump"), strings.HasPrefix(line, "Connections dump"):
			inTracker = false
		}
		if !inTracker {
			continue
		}
		for _, m := range sessionRE.FindAllString(line, -1) {
			if v, err := strconv.ParseUint(m[2:], 16, 64); err == nil {
				ids[int64(v)] = true
			}
		}
	}
	return ids, sc.Err()
}

func (s *Server) dropConns() {
	s.mu.Lock()
	for c := range s.cns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		cut := s.cut
		s.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", s.ServerAddr(), time.Second)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.cns[c] = struct{}{}
		s.cns[up] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer s.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			s.mu.Lock()
			delete(s.cns, dst)
			delete(s.cns, src)
			s.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

func (s *Server) close() {
	s.kill()
	s.ln.Close()
	s.dropConns()
	s.wg.Wait()
}

// Pid is the java process's pid, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
