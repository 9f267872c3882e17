package container

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTar(t *testing.T, path string, gz bool, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(data)
		w.Close()
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnpackTopology(t *testing.T) {
	dir := t.TempDir()
	writeTar(t, filepath.Join(dir, "wc.tar.gz"), true, map[string]string{"libs/dep.jar": "dep", "wc.jar": "new"})
	os.WriteFile(filepath.Join(dir, "wc.jar"), []byte("old"), 0o644)
	f := &Flags{PkgType: "tar", TopologyBinaryFile: "wc.tar.gz"}
	if err := unpackTopology(f, dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"libs/dep.jar": "dep", "wc.jar": "new"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("after untar, %s = %q, want %q (tar overwrites)", name, b, want)
		}
	}

	// A pex is unzipped without overwriting.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, content := range map[string]string{"__main__.py": "new", "lib/x.py": "x"} {
		w, _ := zw.Create(name)
		w.Write([]byte(content))
	}
	zw.Close()
	os.WriteFile(filepath.Join(dir, "wc.pex"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "__main__.py"), []byte("old"), 0o644)
	if err := unpackTopology(&Flags{PkgType: "pex", TopologyBinaryFile: "wc.pex"}, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "__main__.py")); string(b) != "old" {
		t.Errorf("unzip overwrote __main__.py: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lib/x.py")); string(b) != "x" {
		t.Errorf("lib/x.py = %q", b)
	}

	// Escaping members and a missing file are errors naming the flag.
	writeTar(t, filepath.Join(dir, "evil.tar"), false, map[string]string{"../evil": "x"})
	err := unpackTopology(&Flags{PkgType: "tar", TopologyBinaryFile: "evil.tar"}, dir)
	if err == nil || !strings.Contains(err.Error(), "leaves the sandbox") {
		t.Errorf("evil tar: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
		t.Errorf("evil member written outside the sandbox")
	}
	err = unpackTopology(&Flags{PkgType: "tar", TopologyBinaryFile: "missing.tar"}, dir)
	if err == nil || !strings.Contains(err.Error(), "--topology-binary-file") {
		t.Errorf("missing tar: %v", err)
	}
	// jar needs nothing.
	if err := unpackTopology(&Flags{PkgType: "jar", TopologyBinaryFile: "missing.jar"}, dir); err != nil {
		t.Errorf("jar: %v", err)
	}
}
