package launcher

import (
	"archive/tar"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The release file is this binary with a payload appended (tests/cluster/pack-release.py):
//
//	[ELF of this binary][payload: tar.gz of node programs][trailer]
//
// trailer = payloadMagic (8 bytes) | payload length (uint64, little endian) | sha256 of the
// binary and the payload (32 bytes; two releases that share a payload must not share a
// folder). At start the payload is unpacked once into <data-dir>/data/<sha>/bin
// with this binary (without the payload) and hard links named after its components, the way K3s
// unpacks its own bundled programs into <data-dir>/data/<hash>/bin.
const (
	payloadMagic   = "K3SUPAY1"
	trailerSize    = 8 + 8 + 32
	selfName       = "k3s-upstream"
	currentDataDir = "current"
)

// InBinary are the components of this binary that get a link in the bin folder.
var InBinary = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
	"kubectl", "containerd", "ctr", "etcd",
}

type payloadInfo struct {
	elfSize, size int64
	sha           string
}

func readTrailer(f *os.File) (*payloadInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < trailerSize {
		return nil, nil
	}
	buf := make([]byte, trailerSize)
	if _, err := f.ReadAt(buf, st.Size()-trailerSize); err != nil {
		return nil, err
	}
	if string(buf[:8]) != payloadMagic {
		return nil, nil
	}
	size := int64(binary.LittleEndian.Uint64(buf[8:16]))
	elf := st.Size() - trailerSize - size
	if size <= 0 || elf <= 0 {
		return nil, fmt.Errorf("the payload trailer of %s is corrupt", f.Name())
	}
	return &payloadInfo{elfSize: elf, size: size, sha: hex.EncodeToString(buf[16:48])}, nil
}

// extractPayload unpacks the payload (once per payload) and returns its bin folder.
func extractPayload(dataDir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := readTrailer(f)
	if err != nil {
		return "", err
	}
	if info == nil {
		return "", fmt.Errorf("%s carries no payload (runc, CNI plugins, crictl): install the release file built by tests/cluster/pack-release.py, not the bare k8s-upstream binary", self)
	}
	dir := filepath.Join(dataDir, "data", info.sha[:16])
	bin := filepath.Join(dir, "bin")
	if _, err := os.Stat(filepath.Join(bin, ".complete")); err == nil {
		return bin, linkCurrent(dataDir, info.sha[:16])
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "bin"), 0o755); err != nil {
		return "", err
	}
	// This binary without its payload, and the links to it.
	out, err := os.OpenFile(filepath.Join(tmp, "bin", selfName), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, 0, info.elfSize)); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	// Hard links, not symbolic ones: a component that starts itself again through
	// os.Executable (the containerd shim does) must find its own name there.
	for _, name := range InBinary {
		if err := os.Link(filepath.Join(tmp, "bin", selfName), filepath.Join(tmp, "bin", name)); err != nil {
			return "", err
		}
	}
	gz, err := gzip.NewReader(io.NewSectionReader(f, info.elfSize, info.size))
	if err != nil {
		return "", fmt.Errorf("payload: %v", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("payload: %v", err)
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return "", fmt.Errorf("payload: bad entry %q", h.Name)
		}
		target := filepath.Join(tmp, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return "", err
			}
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o400)
			if err != nil {
				return "", err
			}
			if _, err := io.Copy(w, tr); err != nil {
				w.Close()
				return "", err
			}
			if err := w.Close(); err != nil {
				return "", err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "bin", ".complete"), []byte(info.sha+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf("unpacked the payload %s into %s", info.sha[:16], dir)
	return bin, linkCurrent(dataDir, info.sha[:16])
}

func linkCurrent(dataDir, name string) error {
	link := filepath.Join(dataDir, "data", currentDataDir)
	if cur, err := os.Readlink(link); err == nil && cur == name {
		return nil
	}
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// execv replaces this process with path.
func execv(path string, argv []string) int {
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fatalf("exec %s: %v", path, err)
	}
	return 0
}
