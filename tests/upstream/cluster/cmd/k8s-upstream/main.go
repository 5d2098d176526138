// Command k8s-upstream is one binary holding real upstream components at the versions pinned
// in ../../go.mod: from k8s.io/kubernetes kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy and kubectl; from github.com/containerd/containerd/v2
// containerd and ctr; from go.etcd.io/etcd/server/v3 etcd. (containerd's runc shim is a
// program of its own, built from the same module: a shim loads every plugin registered in
// its binary, and this one registers containerd's.)
//
// It is ours only in the dispatch below; every component is the upstream one, built from
// its upstream package (cmd/<component>/app, k8s.io/kubectl/pkg/cmd, containerd's
// cmd/containerd/command, etcd's etcdmain). One binary instead of ten shares the code they
// have in common (most of it), which keeps what travels to a node small.
//
// The component is chosen by the name the binary is called by (a link named
// kube-apiserver, kubelet, ...) or, failing that, by the first argument:
//
//	k8s-upstream kubelet --config ...
//	ln -s k8s-upstream kubectl && ./kubectl get nodes
//
// Called as k3s or k3s-upstream it is the launcher of ../../internal/launcher (k3s-upstream,
// NOT K3s), which runs these components as K3s would run its own.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // CronJob time zones (kube-apiserver, kube-controller-manager)

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins" // containerd's built-in plugins (CRI included)
	"github.com/containerd/containerd/v2/cmd/containerd/command"
	ctr "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/k3s-gpu/cluster/tests/upstream/cluster/internal/launcher"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
)

var components = map[string]func() int{
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":                 func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-proxy":              func() int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl":                 runKubectl,
	"containerd":              func() int { return runCli("containerd", command.App().Run) },
	"ctr":                     func() int { return runCli("ctr", ctr.New().Run) },
	"etcd":                    func() int { etcdmain.Main(os.Args); return 0 },
}

// runCli runs a urfave/cli application (containerd, ctr) and turns its error into an exit status.
func runCli(name string, run func([]string) error) int {
	if err := run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, err)
		return 1
	}
	return 0
}

func runKubectl() int {
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	var command *cobra.Command = cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
	return 0
}

func main() {
	name := filepath.Base(os.Args[0])
	launcher.Components = map[string]launcher.Component{}
	for n, f := range components {
		launcher.Components[n] = f
	}
	if launcher.Handles(name) {
		os.Exit(launcher.Main(os.Args))
	}
	// kubectl, crictl and ctr links to an installed k3s (as K3s has them): K3s's defaults.
	if self, err := os.Executable(); err == nil && launcher.Handles(filepath.Base(self)) {
		switch name {
		case "kubectl":
			os.Exit(launcher.Kubectl(os.Args[1:]))
		case "crictl":
			os.Exit(launcher.Crictl(os.Args[1:]))
		case "ctr":
			os.Exit(launcher.Ctr(os.Args[1:]))
		}
	}
	run, ok := components[name]
	if !ok && len(os.Args) > 1 {
		if run, ok = components[os.Args[1]]; ok {
			// The component sees itself as argv[0], its flags after it.
			os.Args = append([]string{os.Args[1]}, os.Args[2:]...)
		}
	}
	if !ok {
		names := make([]string, 0, len(components))
		for n := range components {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: %s COMPONENT [flags]  (or call it through a link named COMPONENT)\ncomponents: %v\n", name, names)
		os.Exit(2)
	}
	os.Exit(run())
}
