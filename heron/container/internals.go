package container

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Logging is what the runtime reads from heron_internals.yaml.
type Logging struct {
	Dir      string // heron.logging.directory (default log-files)
	MaxBytes int64  // heron.logging.maximum.size.mb (default 100)
	MaxFiles int    // heron.logging.maximum.files (default 5)
}

// LoadLogging reads the logging keys of heron_internals.yaml.
func LoadLogging(path string) (Logging, error) {
	l := Logging{Dir: "log-files", MaxBytes: 100 << 20, MaxFiles: 5}
	b, err := os.ReadFile(path)
	if err != nil {
		return l, fmt.Errorf("heron internals config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return l, fmt.Errorf("heron internals config %s: %w", path, err)
	}
	if v, ok := m["heron.logging.directory"].(string); ok && v != "" {
		l.Dir = v
	}
	if v, ok := m["heron.logging.maximum.size.mb"].(int); ok && v > 0 {
		l.MaxBytes = int64(v) << 20
	}
	if v, ok := m["heron.logging.maximum.files"].(int); ok && v > 0 {
		l.MaxFiles = v
	}
	return l, nil
}

// probeJava runs Heron's JVM-version probe once: java -cp <instance
// classpath> org.apache.heron.instance.util.JvmVersion, in dir.
func probeJava(ctx context.Context, f *Flags, dir string, env []string) (string, error) {
	java := filepath.Join(f.HeronJavaHome, "bin", "java")
	cmd := exec.CommandContext(ctx, java, "-cp", f.InstanceClasspath, "org.apache.heron.instance.util.JvmVersion")
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("determine the JVM version with %s: %v %s", java, err, stderr)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("determine the JVM version with %s: empty output", java)
	}
	return v, nil
}

// needsJava says whether the processes need the JVM version (Java instances).
func needsJava(f *Flags, plan *Plan) bool {
	if f.PkgType != "jar" && f.PkgType != "tar" {
		return false
	}
	c, ok := plan.Container(f.Shard)
	return ok && f.Shard != 0 && len(c.Instances) > 0
}
