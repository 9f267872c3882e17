package localsched

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// prepareSandbox lays out one container's directory: the Heron core release
// (heron-core/), the topology package (the .defn, the topology binary,
// heron-conf/), and the configuration when the package carries none.
func prepareSandbox(ctx context.Context, s settings, dir string, pkgArchive string, logf func(string, ...any)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := linkCore(ctx, s, dir, logf); err != nil {
		return err
	}
	if err := extractTarGz(pkgArchive, dir); err != nil {
		return fmt.Errorf("topology package %s: %w", pkgArchive, err)
	}
	conf := filepath.Join(dir, "heron-conf")
	if _, err := os.Stat(filepath.Join(conf, "statemgr.yaml")); err != nil {
		if err := s.cfg.WriteConfDir(conf); err != nil {
			return fmt.Errorf("write %s: %w", conf, err)
		}
	}
	// Every runtime process reads heron_internals.yaml; a configuration
	// without one gets Heron's logging defaults.
	internals := filepath.Join(conf, "heron_internals.yaml")
	if _, err := os.Stat(internals); err != nil {
		if err := os.WriteFile(internals, []byte(minimalInternals), 0o644); err != nil {
			return err
		}
	}
	logf("container sandbox %s ready", dir)
	return nil
}

// extractTarGz unpacks a .tar.gz into dest, refusing entries that would land
// outside it.
func extractTarGz(src, dest string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q leaves the directory", h.Name)
		}
		p := filepath.Join(dest, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			t := h.Linkname
			if filepath.IsAbs(t) || strings.HasPrefix(filepath.Clean(filepath.Join(filepath.Dir(name), t)), "..") {
				return fmt.Errorf("link %q → %q leaves the directory", h.Name, t)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			os.Remove(p)
			if err := os.Symlink(t, p); err != nil {
				return err
			}
		}
	}
}

const minimalInternals = `# Written by egret's local scheduler: the cluster configuration shipped no heron_internals.yaml.
heron.logging.directory: log-files
heron.logging.maximum.size.mb: 100
heron.logging.maximum.files: 5
`

// linkCore gives a sandbox the core release: extracted once per working
// directory (<wd>/heron-core-release/) and linked as <sandbox>/heron-core, as
// Heron's local cluster links its installed core. The core is read only.
func linkCore(ctx context.Context, s settings, dir string, logf func(string, ...any)) error {
	shared := filepath.Join(filepath.Dir(dir), "heron-core-release")
	if _, err := os.Stat(filepath.Join(shared, "heron-core")); err != nil {
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".heron-core-release-")
		if err != nil {
			return err
		}
		if err := fetchCore(ctx, s, tmp, logf); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		if _, err := os.Stat(filepath.Join(tmp, "heron-core")); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("the Heron core release %s has no heron-core/ directory", s.CoreURI)
		}
		if err := os.Rename(tmp, shared); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	link := filepath.Join(dir, "heron-core")
	os.Remove(link)
	if err := os.Symlink(filepath.Join("..", "heron-core-release", "heron-core"), link); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(shared, "release.yaml")); err == nil {
		return os.WriteFile(filepath.Join(dir, "release.yaml"), b, 0o644)
	}
	return nil
}
