// Package launcher is k3s-upstream: a launcher of ours that stands where the K3s binary
// stands (/usr/local/bin/k3s) and runs the REAL upstream components of this binary
// (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, etcd, containerd and
// its runc shim) plus the node programs in its payload (runc, CNI plugins, crictl), wired
// from the same files K3s reads: /etc/rancher/k3s/config.yaml (+ config.yaml.d), token-file,
// the containerd templates and drop-ins under <data-dir>/agent/etc/containerd, airgap image
// tarballs under <data-dir>/agent/images and manifests under <data-dir>/server/manifests.
//
// IT IS NOT K3s. It exists because the K3s module could not be had here (see
// docs/validation/real-cluster.md). What it does in K3s's place (the supervisor, joins,
// certificates, the containerd base config, the manifest auto-deploy) is our own code and is
// named so in every output: `k3s --version` says "k3s-upstream, NOT K3s"; the containerd
// config it writes says so in its first line.
package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"k8s.io/component-base/version"
)

// Name is how the launcher calls itself in every message.
const Name = "k3s-upstream"

// Component runs one in-binary component (kubectl, ctr, ...) with os.Args already set.
type Component func() int

// Components are the in-binary components the launcher may call (set by the main package).
var Components map[string]Component

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, Name+": "+format+"\n", args...)
}

func fatalf(format string, args ...interface{}) int {
	logf(format, args...)
	return 1
}

// Version is the release name this build answers to (the Kubernetes version it was stamped
// with, e.g. v1.36.3+k3s1).
func Version() string { return version.Get().GitVersion }

func printVersion() {
	fmt.Printf("k3s version %s (%s, NOT K3s: upstream Kubernetes %s components)\n",
		Version(), Name, strings.SplitN(Version(), "+", 2)[0])
	fmt.Printf("go version %s\n", runtime.Version())
}

// Handles reports whether the launcher answers to this program name.
func Handles(name string) bool {
	return name == "k3s" || name == Name
}

// Main is `k3s <command>`.
func Main(args []string) int {
	if len(args) < 2 {
		printVersion()
		return 0
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "--version", "-v", "version":
		printVersion()
		return 0
	case "server":
		return runNode(roleServer, rest)
	case "agent":
		return runNode(roleAgent, rest)
	case "kubectl":
		return Kubectl(rest)
	case "crictl":
		return Crictl(rest)
	case "ctr":
		return Ctr(rest)
	case "etcd-snapshot", "secrets-encrypt", "certificate", "token", "completion":
		return fatalf("'k3s %s' is a K3s command that %s does not implement (it is not K3s)", cmd, Name)
	default:
		return fatalf("unknown command %q: %s implements server, agent, kubectl, crictl, ctr, --version", cmd, Name)
	}
}

// Kubectl is `k3s kubectl` (and the kubectl link): the real kubectl, with K3s's default
// kubeconfig when none is given.
func Kubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		home, _ := os.UserHomeDir()
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err != nil {
			if _, err := os.Stat(kubeconfigAdmin); err == nil {
				os.Setenv("KUBECONFIG", kubeconfigAdmin)
			}
		}
	}
	os.Args = append([]string{"kubectl"}, args...)
	return Components["kubectl"]()
}

// Ctr is `k3s ctr`: the real ctr, on the node's containerd socket, namespace k8s.io.
func Ctr(args []string) int {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", containerdSock)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	os.Args = append([]string{"ctr"}, args...)
	return Components["ctr"]()
}

// Crictl is `k3s crictl`: the real crictl of the payload, on the node's containerd socket.
func Crictl(args []string) int {
	cfg, err := loadConfig(configFile)
	if err != nil {
		return fatalf("%v", err)
	}
	bin, err := extractPayload(cfg.dataDir())
	if err != nil {
		return fatalf("%v", err)
	}
	if os.Getenv("CONTAINER_RUNTIME_ENDPOINT") == "" {
		os.Setenv("CONTAINER_RUNTIME_ENDPOINT", "unix://"+containerdSock)
	}
	return execv(filepath.Join(bin, "crictl"), append([]string{"crictl"}, args...))
}
