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
	if err := fetchCore(ctx, s, dir); err != nil {
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
