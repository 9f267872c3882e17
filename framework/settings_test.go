package framework

import (
	"strings"
	"testing"
	"time"
)

// mapConfig is a Getter over a map, with the config package's duration rule
// (a unit in the key's name, else a Go duration).
type mapConfig map[string]string

func (m mapConfig) String(k string) string { return m[k] }
func (m mapConfig) Duration(k string, def time.Duration) (time.Duration, error) {
	v, ok := m[k]
	if !ok {
		return def, nil
	}
	if strings.HasSuffix(k, ".ms") {
		d, err := time.ParseDuration(v + "ms")
		return d, err
	}
	return time.ParseDuration(v)
}

func TestReadSettings(t *testing.T) {
	sum := "sha256:" + strings.Repeat("ab", 32)
	base := func() mapConfig {
		return mapConfig{KeyMaster: "m1:5050, http://m2:5050", KeyCoreURI: "file:///r/heron-core.tar.gz", KeyEgretURI: "file:///d/egret.tar.gz",
			KeyEgretChecksum: sum}
	}
	s, err := ReadSettings(base())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Masters) != 2 || s.Masters[0] != "http://m1:5050/api/v1/scheduler" || s.Masters[1] != "http://m2:5050/api/v1/scheduler" {
		t.Errorf("masters = %v", s.Masters)
	}
	if s.Role != "*" || s.FailoverTimeout != 7*24*time.Hour || s.APIAddress != "127.0.0.1:0" || s.Policy.Budget != DefaultPolicy.Budget {
		t.Errorf("defaults = %+v", s)
	}
	for _, tc := range []struct {
		key, value, wantInError string
	}{
		{KeyMaster, "", KeyMaster},
		{KeyMaster, "zk://z:2181/mesos", "ZooKeeper"},
		{KeyMaster, "ftp://x", KeyMaster},
		{KeyCoreURI, "", KeyCoreURI},
		{KeyEgretURI, "", KeyEgretURI},
		{KeyEgretChecksum, "md5:00", KeyEgretChecksum},
		{KeyFailoverTimeout, "soon", "soon"},
		{KeyBudget, "ten/1m", KeyBudget},
		{KeyBudget, "3", KeyBudget},
		{KeyBackoffMin, "2m", KeyBackoffMin},
		{KeySecret, "s", KeyPrincipal},
		{KeyAPIAddress, "0.0.0.0:7000", KeyToken},
	} {
		c := base()
		c[tc.key] = tc.value
		if _, err := ReadSettings(c); err == nil || !strings.Contains(err.Error(), tc.wantInError) {
			t.Errorf("%s=%q: error %v, want one naming %q", tc.key, tc.value, err, tc.wantInError)
		}
	}
	c := base()
	c[KeyBudget], c[KeyAPIAddress], c[KeyToken] = "3/90s", "0.0.0.0:7000", "tok"
	s, err = ReadSettings(c)
	if err != nil || s.Policy.Budget != 3 || s.Policy.Window != 90*time.Second {
		t.Errorf("budget 3/90s: %+v, %v", s.Policy, err)
	}
}

func TestExecutorInfo(t *testing.T) {
	sum := strings.Repeat("0a", 32)
	for _, tc := range []struct{ uri, checksum, want string }{
		{"http://files/egret-1-linux-amd64.tar.gz", "", "exec ./egret executor"},
		{"http://files/egret-1-linux-amd64.tar.gz?x=1", "sha256:" + sum,
			"echo '" + sum + "  egret-1-linux-amd64.tar.gz' | sha256sum -c --quiet - && exec ./egret executor"},
	} {
		ei := ExecutorInfo(tc.uri, tc.checksum)
		if got := ei.Command.GetValue(); got != tc.want {
			t.Errorf("ExecutorInfo(%q, %q) command = %q, want %q", tc.uri, tc.checksum, got, tc.want)
		}
		if u := ei.Command.URIs; len(u) != 1 || u[0].Value != tc.uri || !u[0].GetExtract() {
			t.Errorf("ExecutorInfo(%q) URIs = %+v, want the tarball, extracted", tc.uri, u)
		}
	}
}
