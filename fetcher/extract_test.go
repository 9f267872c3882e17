package fetcher

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a test archive.
type entry struct {
	name, body, link string
	typ              byte // tar type flag
	mode             int64
}

func writeTarGz(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := fs.FileMode(e.mode)
		if mode == 0 {
			mode = 0o644
		}
		body := e.body
		switch e.typ {
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink
			body = e.link
		case tar.TypeDir:
			mode |= fs.ModeDir
		case tar.TypeFifo:
			mode |= fs.ModeNamedPipe
		case tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExtractKeepsContainedLinksAndDropsDangerousBits(t *testing.T) {
	for _, kind := range []string{"tar.gz", "zip"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			arc := filepath.Join(dir, "a."+kind)
			entries := []entry{
				{name: "heron-core/", typ: tar.TypeDir, mode: 0o755},
				{name: "heron-core/bin/heron-shell", body: "#!/bin/sh\n", mode: 0o6777},
				{name: "heron-core/lib/a.jar", body: "jar"},
				{name: "heron-core/lib/link.jar", typ: tar.TypeSymlink, link: "a.jar"},
			}
			if kind == "zip" {
				writeZip(t, arc, entries)
			} else {
				writeTarGz(t, arc, entries)
			}
			dest := filepath.Join(dir, "out")
			if err := Extract(context.Background(), arc, dest, FormatNone, DefaultLimits); err != nil {
				t.Fatalf("Extract = %v", err)
			}
			fi, err := os.Stat(filepath.Join(dest, "heron-core/bin/heron-shell"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fi.Mode(), fs.FileMode(0o775); got != want {
				t.Errorf("mode of heron-shell = %v, want %v (setuid, setgid and world-write dropped)", got, want)
			}
			l, err := os.Readlink(filepath.Join(dest, "heron-core/lib/link.jar"))
			if err != nil || l != "a.jar" {
				t.Errorf("link.jar = %q, %v; want a symbolic link to a.jar", l, err)
			}
		})
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"absolute", []entry{{name: "/etc/evil", body: "x"}}, "absolute path"},
		{"dotdot", []entry{{name: "a/../../evil", body: "x"}}, `".." component`},
		{"symlink out", []entry{{name: "l", typ: tar.TypeSymlink, link: "../../etc"}}, "points outside"},
		{"symlink absolute", []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "points outside"},
		{"write through symlink", []entry{
			{name: "d/", typ: tar.TypeDir, mode: 0o755},
			{name: "l", typ: tar.TypeSymlink, link: "d"},
			{name: "l/x", body: "x"},
		}, "goes through the symbolic link"},
		{"symlink chain", []entry{
			{name: "a/", typ: tar.TypeDir, mode: 0o755},
			{name: "a/x", typ: tar.TypeSymlink, link: "."},
			{name: "a/y", typ: tar.TypeSymlink, link: "x/../.."},
		}, "points outside"},
		{"fifo", []entry{{name: "p", typ: tar.TypeFifo}}, "FIFO"},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}, "device node"},
	}
	for _, tt := range tests {
		for _, kind := range []string{"tar.gz", "zip"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				arc := filepath.Join(dir, "a."+kind)
				if kind == "zip" {
					writeZip(t, arc, tt.entries)
				} else {
					writeTarGz(t, arc, tt.entries)
				}
				dest := filepath.Join(dir, "out")
				err := Extract(context.Background(), arc, dest, FormatNone, DefaultLimits)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Extract = %v, want an error containing %q", err, tt.want)
				}
				if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("destination exists after a refused archive: %v", err)
				}
				left, _ := os.ReadDir(dir)
				if len(left) != 1 {
					t.Errorf("left behind in %s: %v", dir, left)
				}
				if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
					t.Errorf("a file was written outside the target")
				}
			})
		}
	}
}

func TestExtractStopsDecompressionBomb(t *testing.T) {
	dir := t.TempDir()
	// 64 MiB of zeros compress to ~64 KiB.
	zeros := strings.Repeat("\x00", 64<<20)
	arc := filepath.Join(dir, "bomb.tar.gz")
	writeTarGz(t, arc, []entry{{name: "zeros", body: zeros}})
	dest := filepath.Join(dir, "out")
	err := Extract(context.Background(), arc, dest, FormatNone, Limits{MaxBytes: 1 << 20, MaxFiles: 10})
	var le *LimitError
	if !errors.As(err, &le) || le.What != "bytes" {
		t.Fatalf("Extract = %v, want a byte LimitError", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial tree left: %v", err)
	}

	// A single .gz over the bound is an error too, never a truncated success.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(zeros[:4<<20]))
	zw.Close()
	single := filepath.Join(dir, "big.gz")
	os.WriteFile(single, buf.Bytes(), 0o644)
	err = Extract(context.Background(), single, filepath.Join(dir, "out2"), FormatNone, Limits{MaxBytes: 1 << 20, MaxFiles: 10})
	if !errors.As(err, &le) {
		t.Fatalf("Extract(single .gz) = %v, want a LimitError", err)
	}

	// Too many files.
	var many []entry
	for i := 0; i < 20; i++ {
		many = append(many, entry{name: "f" + strings.Repeat("x", i), body: "x"})
	}
	arc2 := filepath.Join(dir, "many.tar.gz")
	writeTarGz(t, arc2, many)
	err = Extract(context.Background(), arc2, filepath.Join(dir, "out3"), FormatNone, Limits{MaxBytes: 1 << 20, MaxFiles: 10})
	if !errors.As(err, &le) || le.What != "files" {
		t.Fatalf("Extract(many) = %v, want a file-count LimitError", err)
	}
}
