package localsched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"egret/fetcher"
	"egret/sandbox"
)

// prepareSandbox lays out one container's directory: the Heron core release
// (heron-core/), the topology package (the .defn, the topology binary,
// heron-conf/), and the configuration when the package carries none.
func prepareSandbox(ctx context.Context, s settings, dir string, pkgArchive string, logf func(string, ...any)) error {
	sb, err := sandbox.New(dir)
	if err != nil {
		return err
	}
	if err := sb.Create(); err != nil {
		return err
	}
	if err := linkCore(ctx, s, dir, logf); err != nil {
		return err
	}
	// The package goes through the fetcher's safe extraction (no escapes, no
	// devices, bounded); it is this submit's own file, so no cache.
	if _, err := (&fetcher.Fetcher{}).Fetch(ctx, fetcher.Request{URI: "file://" + pkgArchive, Dest: dir, Extract: true}); err != nil {
		return fmt.Errorf("topology package %s: %w", pkgArchive, err)
	}
	conf := sb.HeronConf()
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
	sb, err := sandbox.New(dir)
	if err != nil {
		return err
	}
	link := sb.HeronCore()
	os.Remove(link)
	if err := os.Symlink(filepath.Join("..", "heron-core-release", "heron-core"), link); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(shared, "release.yaml")); err == nil {
		return os.WriteFile(filepath.Join(dir, "release.yaml"), b, 0o644)
	}
	return nil
}
