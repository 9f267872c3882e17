package fetcher

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// Limits bound what one extraction may write, so that a hostile or broken archive
// (a decompression bomb) cannot fill the host's disk.
type Limits struct {
	MaxBytes int64 // total bytes of file content written
	MaxFiles int   // entries created (files, directories, links)
}

// DefaultLimits protect a host without getting in the way of a real Heron release
// (a few hundred MB in a few thousand files).
var DefaultLimits = Limits{MaxBytes: 8 << 30, MaxFiles: 200_000}

// LimitError is returned when an archive exceeds a bound. Extraction stops at the
// bound and nothing of the archive is left behind.
type LimitError struct {
	What  string // "bytes" or "files"
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("archive exceeds the limit of %d %s", e.Limit, e.What)
}

// Format is an archive or compression format, from the file name.
type Format string

// The formats Extract understands.
const (
	FormatNone  Format = ""
	FormatTar   Format = "tar"
	FormatTarGz Format = "tar.gz"
	FormatTarBz Format = "tar.bz2"
	FormatTarXz Format = "tar.xz"
	FormatZip   Format = "zip"
	FormatGz    Format = "gz"
	FormatBz2   Format = "bz2"
	FormatXz    Format = "xz"
)

// FormatOf names the format of a file by its name, as Mesos' fetcher does;
// FormatNone for a file that is not an archive.
func FormatOf(name string) Format {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return FormatTarGz
	case strings.HasSuffix(n, ".tar.bz2"), strings.HasSuffix(n, ".tbz2"), strings.HasSuffix(n, ".tbz"):
		return FormatTarBz
	case strings.HasSuffix(n, ".tar.xz"), strings.HasSuffix(n, ".txz"):
		return FormatTarXz
	case strings.HasSuffix(n, ".tar"):
		return FormatTar
	case strings.HasSuffix(n, ".zip"):
		return FormatZip
	case strings.HasSuffix(n, ".gz"):
		return FormatGz
	case strings.HasSuffix(n, ".bz2"):
		return FormatBz2
	case strings.HasSuffix(n, ".xz"):
		return FormatXz
	}
	return FormatNone
}

// Extract unpacks the archive at src (format from its name, or given) into the
// directory dest, which must not exist yet. It unpacks into a temporary directory
// beside dest and renames it into place only when complete, so a failure never
// leaves a partial tree. It refuses absolute paths, ".." components, links that
// leave the tree, device nodes and FIFOs; it drops setuid, setgid and world-write
// bits; symbolic links that stay inside the tree are kept.
func Extract(ctx context.Context, src, dest string, format Format, lim Limits) error {
	return extract(ctx, src, dest, format, lim, false)
}

func extract(ctx context.Context, src, dest string, format Format, lim Limits, readOnly bool) error {
	if format == FormatNone {
		format = FormatOf(src)
	}
	if format == FormatNone {
		return fmt.Errorf("extract %s: not an archive this fetcher knows (tar, tar.gz, tgz, tar.bz2, tar.xz, zip, gz, bz2, xz)", src)
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("extract %s: %s already exists", src, dest)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".egret-extract-")
	if err != nil {
		return fmt.Errorf("extract %s: %w", src, err)
	}
	if err := extractInto(ctx, src, tmp, format, lim, readOnly); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract %s: %w", src, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract %s: %w", src, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("extract %s: %w", src, err)
	}
	return nil
}

// extractInto unpacks into the existing empty directory root.
func extractInto(ctx context.Context, src, root string, format Format, lim Limits, readOnly bool) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	x := &extractor{ctx: ctx, root: root, lim: lim, readOnly: readOnly}
	br := bufio.NewReaderSize(f, 1<<20)
	switch format {
	case FormatZip:
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			return fmt.Errorf("zip: %w", err)
		}
		err = x.zip(zr)
		if err != nil {
			return err
		}
		return x.checkLinks()
	case FormatTar:
		if err := x.tar(br); err != nil {
			return err
		}
		return x.checkLinks()
	case FormatTarGz, FormatTarBz, FormatTarXz:
		r, err := decompressor(format, br)
		if err != nil {
			return err
		}
		if err := x.tar(r); err != nil {
			return err
		}
		return x.checkLinks()
	case FormatGz, FormatBz2, FormatXz:
		r, err := decompressor(format, br)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
		return x.file(name, 0o644, r)
	}
	return fmt.Errorf("unknown format %q", format)
}

func decompressor(f Format, r io.Reader) (io.Reader, error) {
	switch f {
	case FormatTarGz, FormatGz:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case FormatTarBz, FormatBz2:
		return bzip2.NewReader(r), nil
	case FormatTarXz, FormatXz:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return xr, nil
	}
	return nil, fmt.Errorf("%s is not compressed", f)
}

type extractor struct {
	ctx   context.Context
	root  string
	lim   Limits
	bytes int64
	files int
	links []string // symbolic links created, checked once the tree is complete
	buf   []byte
	// readOnly drops write bits of files: trees in the cache are shared by hard links.
	readOnly bool
}

// clean validates an entry name and returns it as a relative, slash-free-of-dots path.
func clean(name string) (string, error) {
	if name == "" {
		return "", errors.New("entry with an empty name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", fmt.Errorf("entry %q has an absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q has a \"..\" component", name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// count charges one entry against the file limit.
func (x *extractor) count() error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	x.files++
	if x.lim.MaxFiles > 0 && x.files > x.lim.MaxFiles {
		return &LimitError{What: "files", Limit: int64(x.lim.MaxFiles)}
	}
	return nil
}

// parent makes the parent directories of rel and refuses a parent that is a
// symbolic link, so that no entry is ever written through a link.
func (x *extractor) parent(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	p := x.root
	for _, part := range strings.Split(dir, "/") {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("entry %q goes through the symbolic link %q", rel, strings.TrimPrefix(p, x.root+"/"))
		case !fi.IsDir():
			return fmt.Errorf("entry %q: %q is not a directory", rel, strings.TrimPrefix(p, x.root+"/"))
		}
	}
	return nil
}

// safeMode drops setuid, setgid, sticky and world-write bits.
func safeMode(m fs.FileMode) fs.FileMode { return m.Perm() &^ 0o002 }

func (x *extractor) dir(rel string, mode fs.FileMode) error {
	if rel == "" {
		return nil
	}
	if err := x.count(); err != nil {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, rel)
	fi, err := os.Lstat(p)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("entry %q: exists and is not a directory", rel)
		}
		return nil
	}
	// Owner keeps rwx so the rest of the archive can be written inside.
	return os.Mkdir(p, safeMode(mode)|0o700)
}

func (x *extractor) file(rel string, mode fs.FileMode, r io.Reader) error {
	if rel == "" {
		return errors.New("file entry names the archive's root")
	}
	if err := x.count(); err != nil {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, rel)
	if fi, err := os.Lstat(p); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("entry %q: a directory of that name exists", rel)
		}
		// A later entry replaces an earlier one, as tar does; never through a link.
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, safeMode(mode)|0o600)
	if err != nil {
		return err
	}
	if x.buf == nil {
		x.buf = make([]byte, 1<<20)
	}
	budget := int64(-1)
	if x.lim.MaxBytes > 0 {
		budget = x.lim.MaxBytes - x.bytes
	}
	var n int64
	if budget >= 0 {
		// Read one byte past the budget to tell "exactly at the bound" from "over it".
		n, err = io.CopyBuffer(f, io.LimitReader(r, budget+1), x.buf)
		if err == nil && n > budget {
			err = &LimitError{What: "bytes", Limit: x.lim.MaxBytes}
		}
	} else {
		n, err = io.CopyBuffer(f, r, x.buf)
	}
	x.bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", rel, err)
	}
	want := safeMode(mode)
	if x.readOnly {
		want &^= 0o222
	}
	// Always set: the umask applied at creation is not the archive's intent.
	return os.Chmod(p, want)
}

func (x *extractor) symlink(rel, target string) error {
	if err := x.count(); err != nil {
		return err
	}
	if target == "" || filepath.IsAbs(target) {
		return fmt.Errorf("symbolic link %q points outside the tree (%q)", rel, target)
	}
	resolved := path.Join(path.Dir(rel), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symbolic link %q points outside the tree (%q)", rel, target)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, rel)
	if _, err := os.Lstat(p); err == nil {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if err := os.Symlink(target, p); err != nil {
		return err
	}
	x.links = append(x.links, rel)
	return nil
}

func (x *extractor) hardlink(rel, target string) error {
	if err := x.count(); err != nil {
		return err
	}
	t, err := clean(target)
	if err != nil || t == "" {
		return fmt.Errorf("hard link %q points outside the tree (%q)", rel, target)
	}
	if err := x.parent(t); err != nil {
		return fmt.Errorf("hard link %q: %w", rel, err)
	}
	tp := filepath.Join(x.root, t)
	fi, err := os.Lstat(tp)
	if err != nil {
		return fmt.Errorf("hard link %q: target %q is not in the archive before it", rel, target)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("hard link %q: target %q is not a regular file", rel, target)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	return os.Link(tp, filepath.Join(x.root, rel))
}

// checkLinks resolves every symbolic link once the tree is complete: a chain of
// links that each look contained (a -> ., b -> a/..) can still leave the tree.
func (x *extractor) checkLinks() error {
	root, err := filepath.EvalSymlinks(x.root)
	if err != nil {
		return err
	}
	for _, rel := range x.links {
		p := filepath.Join(x.root, rel)
		r, err := evalExisting(p)
		if err != nil {
			return fmt.Errorf("symbolic link %q: %w", rel, err)
		}
		if r != root && !strings.HasPrefix(r, root+string(filepath.Separator)) {
			return fmt.Errorf("symbolic link %q points outside the tree", rel)
		}
	}
	return nil
}

// evalExisting resolves links in p as far as the path exists; a dangling link is
// judged by the part of its path that exists, joined lexically with the rest.
func evalExisting(p string) (string, error) {
	rest := ""
	cur := p
	for i := 0; i < 255; i++ {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Clean(filepath.Join(r, rest)), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// Resolve the link itself one step, then keep going on what exists.
		if t, lerr := os.Readlink(cur); lerr == nil {
			if filepath.IsAbs(t) {
				return filepath.Clean(filepath.Join(t, rest)), nil
			}
			cur = filepath.Join(filepath.Dir(cur), t)
			continue
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = filepath.Dir(cur)
	}
	return "", errors.New("too many levels of symbolic links")
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		rel, err := clean(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(rel, fs.FileMode(h.Mode))
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			err = x.file(rel, fs.FileMode(h.Mode), tr)
		case tar.TypeSymlink:
			err = x.symlink(rel, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(rel, h.Linkname)
		case tar.TypeChar, tar.TypeBlock:
			err = fmt.Errorf("entry %q is a device node", h.Name)
		case tar.TypeFifo:
			err = fmt.Errorf("entry %q is a FIFO", h.Name)
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		default:
			err = fmt.Errorf("entry %q has an unsupported type %q", h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(zr *zip.Reader) error {
	for _, zf := range zr.File {
		rel, err := clean(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = x.dir(rel, mode)
		case mode&fs.ModeSymlink != 0:
			var target []byte
			target, err = readSmall(zf, 4096)
			if err == nil {
				err = x.symlink(rel, string(target))
			}
		case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			err = fmt.Errorf("entry %q is a device node", zf.Name)
		case mode&fs.ModeNamedPipe != 0:
			err = fmt.Errorf("entry %q is a FIFO", zf.Name)
		case mode&fs.ModeSocket != 0:
			err = fmt.Errorf("entry %q is a socket", zf.Name)
		default:
			var rc io.ReadCloser
			rc, err = zf.Open()
			if err == nil {
				err = x.file(rel, mode, rc)
				rc.Close()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readSmall(zf *zip.File, max int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("entry %q: link target too long", zf.Name)
	}
	return b, nil
}
