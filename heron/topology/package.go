package topology

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
)

// FormatVersion is the version of egret-package.json, the one file of a package that only
// egret writes. A newer version is refused.
const FormatVersion = 1

// MetaFile describes how egret built a package; Heron ignores it.
const MetaFile = "egret-package.json"

// Meta is the content of MetaFile.
type Meta struct {
	FormatVersion int    `json:"format_version"`
	BuiltBy       string `json:"built_by"`
	Spec          string `json:"spec"`
	Binary        string `json:"binary"`
	PackageType   string `json:"package_type"`
}

// emptyJar is an empty zip archive: the topology binary of a spec that names none (the
// simulated release runs no Java).
var emptyJar = []byte{'P', 'K', 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// Result says what Build wrote.
type Result struct {
	Defn     string // <dir>/<name>.defn
	Package  string // <dir>/topology.tar.gz
	Topology *model.Topology
}

// Build writes <dir>/<name>.defn and <dir>/topology.tar.gz. The package holds, at its root,
// the .defn, the topology binary by base name, egret-package.json and, when conf is given,
// heron-conf/ (conf's cluster files, override.yaml and release.yaml), as Heron's CLI lays it
// out. Nothing is left behind on failure.
func Build(s *Spec, dir string, conf *config.Config) (*Result, error) {
	t, err := s.Topology()
	if err != nil {
		return nil, err
	}
	defn, err := proto.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("topology %s: encode: %w", s.Name, err)
	}
	binary := emptyJar
	if s.Binary != "" {
		if binary, err = os.ReadFile(s.binaryPath()); err != nil {
			return nil, fmt.Errorf("topology spec %s: binary: %w", s.file, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("topology build: %w", err)
	}
	meta, _ := json.MarshalIndent(Meta{FormatVersion: FormatVersion, BuiltBy: "egret topology build",
		Spec: filepath.Base(s.file), Binary: s.BinaryName(), PackageType: s.PackageType()}, "", "  ")
	files := map[string][]byte{
		s.Name + ".defn": defn,
		s.BinaryName():   binary,
		MetaFile:         append(meta, '\n'),
	}
	if conf != nil {
		tmp, err := os.MkdirTemp(dir, ".heron-conf-*")
		if err != nil {
			return nil, fmt.Errorf("topology build: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := conf.WriteConfDir(tmp); err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(tmp)
		if err != nil {
			return nil, fmt.Errorf("topology build: %w", err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(tmp, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("topology build: %w", err)
			}
			files["heron-conf/"+e.Name()] = b
		}
		if _, ok := files["heron-conf/release.yaml"]; !ok {
			files["heron-conf/release.yaml"] = []byte("heron.build.version: egret\nheron.build.user: egret\n")
		}
	}
	var buf bytes.Buffer
	if err := writeTarGz(&buf, files); err != nil {
		return nil, fmt.Errorf("topology build: %w", err)
	}
	res := &Result{Defn: filepath.Join(dir, s.Name+".defn"), Package: filepath.Join(dir, "topology.tar.gz"), Topology: t}
	if err := writeFileAtomic(res.Defn, defn); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(res.Package, buf.Bytes()); err != nil {
		os.Remove(res.Defn)
		return nil, err
	}
	return res, nil
}

func writeTarGz(w io.Writer, files map[string][]byte) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirDone := false
	mtime := time.Unix(0, 0)
	for _, n := range names {
		if strings.HasPrefix(n, "heron-conf/") && !dirDone {
			dirDone = true
			if err := tw.WriteHeader(&tar.Header{Name: "heron-conf/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("topology build: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("topology build: write %s: %w", path, err)
	}
	return nil
}

// Package is a topology package as read.
type Package struct {
	Path        string
	Topology    *model.Topology
	DefnName    string   // <name>.defn
	Binary      string   // the topology file's name at the root
	PackageType string   // jar, tar, pex, so, dylib
	ConfFiles   []string // heron-conf/ entries
	Meta        *Meta    // nil for a package egret did not build
}

// MaxDefnBytes bounds the .defn read from a package.
const MaxDefnBytes = 64 << 20

// ReadPackage reads a topology.tar.gz, Heron-built or egret-built: it finds the .defn and the
// topology binary at the root, and refuses an egret-package.json of a newer format.
func ReadPackage(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("topology package %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("topology package %s: not a .tar.gz: %w", path, err)
	}
	tr := tar.NewReader(gz)
	p := &Package{Path: path}
	var rootFiles []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("topology package %s: %w", path, err)
		}
		name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(h.Name)), "./")
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if strings.HasPrefix(name, "heron-conf/") {
			p.ConfFiles = append(p.ConfFiles, strings.TrimPrefix(name, "heron-conf/"))
			continue
		}
		if strings.Contains(name, "/") {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".defn"):
			if p.Topology != nil {
				return nil, fmt.Errorf("topology package %s: more than one .defn (%s, %s)", path, p.DefnName, name)
			}
			b, err := io.ReadAll(io.LimitReader(tr, MaxDefnBytes+1))
			if err != nil {
				return nil, fmt.Errorf("topology package %s: %w", path, err)
			}
			if len(b) > MaxDefnBytes {
				return nil, fmt.Errorf("topology package %s: %s is larger than %d bytes", path, name, MaxDefnBytes)
			}
			t := &model.Topology{}
			if err := proto.Unmarshal(b, t); err != nil {
				return nil, fmt.Errorf("topology package %s: %s is not a Heron topology definition: %w", path, name, err)
			}
			p.Topology, p.DefnName = t, name
		case name == MetaFile:
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, fmt.Errorf("topology package %s: %w", path, err)
			}
			var m Meta
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("topology package %s: %s: %w", path, MetaFile, err)
			}
			if m.FormatVersion > FormatVersion {
				return nil, fmt.Errorf("topology package %s: %s has format_version %d; this egret reads format_version %d or older", path, MetaFile, m.FormatVersion, FormatVersion)
			}
			p.Meta = &m
		default:
			rootFiles = append(rootFiles, name)
		}
	}
	if p.Topology == nil {
		return nil, fmt.Errorf("topology package %s holds no <topology>.defn", path)
	}
	if want := p.Topology.GetName() + ".defn"; p.DefnName != want {
		return nil, fmt.Errorf("topology package %s: %s defines topology %q (Heron looks for %s)", path, p.DefnName, p.Topology.GetName(), want)
	}
	sort.Strings(rootFiles)
	if m := p.Meta; m != nil && m.Binary != "" && m.PackageType != "" {
		for _, n := range rootFiles {
			if n == m.Binary {
				p.Binary, p.PackageType = n, m.PackageType
			}
		}
	}
	for _, n := range rootFiles {
		if p.Binary != "" {
			break
		}
		if t, ok := PackageType(n); ok {
			p.Binary, p.PackageType = n, t
			break
		}
	}
	if p.Binary == "" {
		return nil, fmt.Errorf("topology package %s holds no topology binary (.jar, .tar, .tar.gz, .pex, .so, .dylib)", path)
	}
	return p, nil
}
