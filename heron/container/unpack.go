package container

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// unpackTopology does what Heron's executor does in worker containers before
// computing their processes: a tar topology is extracted into the sandbox
// (overwriting, as `tar -xf`), a pex is unzipped without overwriting (as
// `unzip -n`), so that the classpath libs/*:<name>.jar and the pex resolve.
func unpackTopology(f *Flags, dir string) error {
	src := inDir(dir, f.TopologyBinaryFile)
	var err error
	switch f.PkgType {
	case "tar":
		err = untar(src, dir)
	case "pex":
		err = unzipNoOverwrite(src, dir)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("flag --topology-binary-file: unpack %s: %w", f.TopologyBinaryFile, err)
	}
	return nil
}

// target resolves an archive member inside dir, refusing escapes.
func target(dir, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if name == "" || strings.Contains(name, "\x00") || filepath.IsAbs(name) || clean != "/"+strings.TrimSuffix(filepath.ToSlash(filepath.Clean(name)), "/") {
		return "", fmt.Errorf("member %q leaves the sandbox", name)
	}
	return filepath.Join(dir, clean), nil
}

func untar(src, dir string) error {
	fh, err := os.Open(src)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := target(dir, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeMember(p, os.FileMode(h.Mode)&0o777, tr, true); err != nil {
				return err
			}
		default:
			// Links and devices have no place in a topology package.
			return fmt.Errorf("member %q: unsupported type %q", h.Name, string(h.Typeflag))
		}
	}
}

func unzipNoOverwrite(src, dir string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		p, err := target(dir, zf.Name)
		if err != nil {
			return err
		}
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			continue // never overwrite (PR #2129)
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		err = writeMember(p, zf.Mode()&0o777, rc, false)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func writeMember(p string, mode os.FileMode, r io.Reader, overwrite bool) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if mode == 0 {
		mode = 0o644
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	out, err := os.OpenFile(p, flags, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
