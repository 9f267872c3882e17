package localsched

import (
	"fmt"
	"net"
	"strconv"
)

// portNames are the nine ports every Heron executor needs, in the order of
// Heron's ExecutorPort enum, named after its executor flags.
var portNames = []string{
	"server-port",
	"tmanager-controller-port",
	"tmanager-stats-port",
	"shell-port",
	"metrics-manager-port",
	"scheduler-port",
	"metricscache-manager-server-port",
	"metricscache-manager-stats-port",
	"checkpoint-manager-port",
}

// reservePorts picks n distinct free TCP ports on host. Every listener stays
// open until all n are chosen, so no port is handed out twice; ports in avoid
// (given to other containers) are skipped.
func reservePorts(host string, n int, avoid map[int]bool) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n+100 {
			return nil, fmt.Errorf("reserve %d ports on %s: too many ports already taken", n, host)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("reserve a port on %s: %w", host, err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if avoid[p] {
			continue
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// portsFree reports whether every port can be bound on host right now: a
// restarted executor keeps its ports when they are still free.
func portsFree(host string, ports []int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}

// portFlags renders a container's ports as executor flags.
func portFlags(ports []int) []string {
	out := make([]string, 0, len(ports))
	for i, p := range ports {
		if i < len(portNames) {
			out = append(out, fmt.Sprintf("--%s=%d", portNames[i], p))
		}
	}
	return out
}
