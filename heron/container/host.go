package container

import (
	"net"
	"os"
	"strings"
)

// hostProbe is what host detection looks at; a field per fact so the
// decision is a pure function.
type hostProbe struct {
	Getenv   func(string) string
	Exists   func(string) bool
	Hostname func() (string, error)
	FQDN     func(host string) string
}

// detectHost is Heron's host detection: in Kubernetes (POD_NAME set) the
// fully qualified name; in Docker (/.dockerenv) $HOST when set; otherwise
// the host name.
func detectHost(p hostProbe) string {
	h, err := p.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	switch {
	case p.Getenv("POD_NAME") != "":
		return p.FQDN(h)
	case p.Exists("/.dockerenv"):
		if v := p.Getenv("HOST"); v != "" {
			return v
		}
	}
	return h
}

// DetectHost applies Heron's host detection to this machine.
func DetectHost() string {
	return detectHost(hostProbe{
		Getenv:   os.Getenv,
		Exists:   func(p string) bool { _, err := os.Stat(p); return err == nil },
		Hostname: os.Hostname,
		FQDN:     fqdn,
	})
}

// fqdn resolves host's canonical name, as Python's socket.getfqdn does
// (falling back to the name itself).
func fqdn(host string) string {
	if cname, err := net.LookupCNAME(host); err == nil && cname != "" {
		return strings.TrimSuffix(cname, ".")
	}
	addrs, err := net.LookupHost(host)
	if err != nil {
		return host
	}
	for _, a := range addrs {
		if names, err := net.LookupAddr(a); err == nil {
			for _, n := range names {
				if n = strings.TrimSuffix(n, "."); strings.Contains(n, ".") {
					return n
				}
			}
		}
	}
	return host
}
