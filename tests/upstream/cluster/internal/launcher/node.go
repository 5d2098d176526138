package launcher

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// runNode is `k3s server` / `k3s agent`.
func runNode(r role, args []string) int {
	if len(args) > 0 {
		return fatalf("'k3s %s' takes no flags here (%v): %s reads /etc/rancher/k3s/config.yaml and config.yaml.d only", r, args, Name)
	}
	cfg, err := loadConfig(configFile)
	if err != nil {
		return fatalf("%v", err)
	}
	if err := cfg.check(r); err != nil {
		return fatalf("%v", err)
	}
	logf("%s %s starting as %s (%s; NOT K3s); config: %s", Name, Version(), r, "real upstream components", strings.Join(cfg.files, ", "))
	n := &node{role: r, cfg: cfg, dataDir: cfg.dataDir(), name: cfg.nodeName()}
	if err := n.prepare(); err != nil {
		return fatalf("%v", err)
	}
	var runErr error
	if r == roleServer {
		runErr = n.server()
	} else {
		runErr = n.agent()
	}
	if runErr != nil {
		logf("%v", runErr)
		n.sup.shutdown()
		return 1
	}
	return n.sup.wait()
}

type node struct {
	role    role
	cfg     *config
	dataDir string
	name    string
	bin     string
	ip      string
	sup     *supervisor
	ctd     containerdPaths
	ctx     context.Context
}

func (n *node) path(parts ...string) string {
	return filepath.Join(append([]string{n.dataDir}, parts...)...)
}

func (n *node) prepare() error {
	n.ctx = context.Background()
	for _, d := range []string{n.path("agent"), n.path("data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	bin, err := extractPayload(n.dataDir)
	if err != nil {
		return err
	}
	n.bin = bin
	// Like K3s: its own programs first on PATH (containerd finds the shim, runc, CNI there).
	os.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	n.ip = n.cfg.str("node-ip")
	if n.ip == "" {
		n.ip = defaultIP()
	}
	n.sup = newSupervisor(n.path("agent", "logs"))
	n.ctd = newContainerdPaths(n.dataDir, bin)
	return nil
}

// defaultIP: the first IPv4 address of the interface that holds the default route.
func defaultIP() string {
	f, err := os.Open("/proc/net/route")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 2 && fields[1] == "00000000" {
				if ifc, err := net.InterfaceByName(fields[0]); err == nil {
					addrs, _ := ifc.Addrs()
					for _, a := range addrs {
						if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
							return ipn.IP.String()
						}
					}
				}
			}
		}
	}
	return "127.0.0.1"
}

func (n *node) component(name string) string { return filepath.Join(n.bin, name) }

// server runs etcd, the control plane and the server's own node.
func (n *node) server() error {
	if n.cfg.str("server") != "" {
		return fmt.Errorf("'server:' on a server means joining an HA cluster (embedded etcd), which %s does not implement", Name)
	}
	if n.cfg.str("datastore-endpoint") != "" {
		return fmt.Errorf("datastore-endpoint is not implemented by %s", Name)
	}
	tlsDir := n.path("server", "tls")
	ca, err := loadOrCreateCA(tlsDir, "server-ca", "k3s-upstream-server-ca")
	if err != nil {
		return err
	}
	// The token: token-file or token; else the one made before; else a new one.
	token, err := n.cfg.token()
	if err != nil {
		return err
	}
	tokenPath := n.path("server", "token")
	if token == "" {
		if data, err := os.ReadFile(tokenPath); err == nil {
			token = strings.TrimSpace(string(data))
		}
	}
	secret, _ := tokenSecret(token)
	if secret == "" {
		b := make([]byte, 16)
		rand.Read(b)
		secret = hex.EncodeToString(b)
	}
	hash, err := caHash(ca.crt)
	if err != nil {
		return err
	}
	full := "K10" + hash + "::server:" + secret

	host, _ := os.Hostname()
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + n.cfg.or("cluster-domain", defaultDomain), "localhost", host, n.name}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(n.ip), firstServiceIP(n.cfg.or("service-cidr", defaultServiceCIDR))}
	for _, san := range n.cfg.strings("tls-san") {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	serving, err := issue(ca, tlsDir, "serving-kube-apiserver", "kube-apiserver", nil, false, dns, ips)
	if err != nil {
		return err
	}
	type cl struct {
		file, cn string
		orgs     []string
	}
	clients := map[string]*keyPair{}
	for _, c := range []cl{
		{"client-admin", "system:admin", []string{"system:masters"}},
		{"client-controller", "system:kube-controller-manager", nil},
		{"client-scheduler", "system:kube-scheduler", nil},
		{"client-kube-apiserver", "system:kube-apiserver", []string{"system:masters"}},
		{"client-kubelet-" + n.name, "system:node:" + n.name, []string{"system:nodes"}},
	} {
		p, err := issue(ca, tlsDir, c.file, c.cn, c.orgs, true, nil, nil)
		if err != nil {
			return err
		}
		clients[c.file] = p
	}
	saKey, saPub, err := serviceAccountKey(tlsDir)
	if err != nil {
		return err
	}
	port := n.cfg.port()
	local := "https://127.0.0.1:" + port
	kc := func(name string) string { return n.path("server", "cred", name+".kubeconfig") }
	for name, file := range map[string]string{"admin": "client-admin", "controller": "client-controller", "scheduler": "client-scheduler"} {
		if err := writeKubeconfig(kc(name), local, ca, clients[file], 0o600); err != nil {
			return err
		}
	}

	// etcd (single member, loopback only).
	etcdDir := n.path("server", "db", "etcd")
	peer := "http://127.0.0.1:2380"
	if err := n.sup.start("etcd", n.component("etcd"), []string{
		"--name=" + n.name, "--data-dir=" + etcdDir,
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=" + n.name + "=" + peer, "--listen-metrics-urls=http://127.0.0.1:2381",
		"--log-level=warn",
	}, nil); err != nil {
		return err
	}

	issuer := "https://kubernetes.default.svc." + n.cfg.or("cluster-domain", defaultDomain)
	apiArgs := []string{
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=0.0.0.0", "--secure-port=" + port,
		"--advertise-address=" + n.ip, "--tls-cert-file=" + serving.crt, "--tls-private-key-file=" + serving.kf,
		"--client-ca-file=" + ca.crt, "--service-cluster-ip-range=" + n.cfg.or("service-cidr", defaultServiceCIDR),
		"--service-account-issuer=" + issuer, "--api-audiences=" + issuer + "," + Name,
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true", "--allow-privileged=true", "--anonymous-auth=true",
		"--kubelet-client-certificate=" + clients["client-kube-apiserver"].crt,
		"--kubelet-client-key=" + clients["client-kube-apiserver"].kf,
		"--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
		"--profiling=false",
	}
	if err := n.sup.start("kube-apiserver", n.component("kube-apiserver"), append(apiArgs, n.cfg.args("kube-apiserver-arg")...), nil); err != nil {
		return err
	}
	admin, err := clientFor(kc("admin"))
	if err != nil {
		return err
	}
	if err := waitReady(n.ctx, admin, 4*time.Minute); err != nil {
		return err
	}
	logf("kube-apiserver is ready on %s", local)
	caPEM, _ := os.ReadFile(ca.crt)
	if err := applyBootstrap(n.ctx, admin, secret, "https://"+net.JoinHostPort(n.ip, port), caPEM); err != nil {
		return fmt.Errorf("creating the join objects: %v", err)
	}

	if err := n.sup.start("kube-controller-manager", n.component("kube-controller-manager"), append([]string{
		"--kubeconfig=" + kc("controller"), "--authentication-kubeconfig=" + kc("controller"),
		"--authorization-kubeconfig=" + kc("controller"), "--bind-address=127.0.0.1", "--secure-port=10257",
		"--cluster-signing-cert-file=" + ca.crt, "--cluster-signing-key-file=" + ca.kf, "--root-ca-file=" + ca.crt,
		"--service-account-private-key-file=" + saKey, "--use-service-account-credentials=true",
		"--allocate-node-cidrs=true", "--cluster-cidr=" + n.cfg.or("cluster-cidr", defaultClusterCIDR),
		"--service-cluster-ip-range=" + n.cfg.or("service-cidr", defaultServiceCIDR),
		"--controllers=*,bootstrapsigner,tokencleaner", "--configure-cloud-routes=false", "--profiling=false",
	}, n.cfg.args("kube-controller-manager-arg")...), nil); err != nil {
		return err
	}
	if err := n.sup.start("kube-scheduler", n.component("kube-scheduler"), append([]string{
		"--kubeconfig=" + kc("scheduler"), "--authentication-kubeconfig=" + kc("scheduler"),
		"--authorization-kubeconfig=" + kc("scheduler"), "--bind-address=127.0.0.1", "--secure-port=10259",
		"--profiling=false",
	}, n.cfg.args("kube-scheduler-arg")...), nil); err != nil {
		return err
	}

	// The server's own node: its kubelet has a client certificate straight from the CA.
	kubeletKC := n.path("agent", "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeletKC, local, ca, clients["client-kubelet-"+n.name], 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(n.path("agent", "server-ca.crt"), caPEM, 0o644); err != nil {
		return err
	}
	if err := n.startNode(kubeletKC, "", []string{"node-role.kubernetes.io/control-plane=true"}); err != nil {
		return err
	}

	// What the roles read: the tokens, the admin kubeconfig.
	if err := writeFileAtomic(tokenPath, []byte(full+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(n.path("server", "node-token"), []byte(full+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeAdminKubeconfig(n.cfg, local, ca, clients["client-admin"]); err != nil {
		return err
	}
	os.MkdirAll(n.path("server", "manifests"), 0o700)
	go n.deployManifests(kc("admin"))
	sdNotify("READY=1")
	logf("server ready; node %s, API %s", n.name, "https://"+net.JoinHostPort(n.ip, port))
	return nil
}

func writeAdminKubeconfig(cfg *config, server string, ca, admin *keyPair) error {
	path := cfg.or("write-kubeconfig", kubeconfigAdmin)
	mode := os.FileMode(0o600)
	if m := cfg.str("write-kubeconfig-mode"); m != "" {
		var v uint32
		if _, err := fmt.Sscanf(m, "%o", &v); err != nil {
			return fmt.Errorf("write-kubeconfig-mode %q is not an octal mode", m)
		}
		mode = os.FileMode(v)
	}
	if err := writeKubeconfig(path, server, ca, admin, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func firstServiceIP(cidr string) net.IP {
	_, ipn, err := net.ParseCIDR(cidr)
	if err != nil {
		return net.ParseIP("10.43.0.1")
	}
	ip := ipn.IP.To4()
	out := net.IPv4(ip[0], ip[1], ip[2], ip[3]+1)
	return out
}

// agent joins a server: discovery, then TLS bootstrap of its kubelet.
func (n *node) agent() error {
	u, err := n.cfg.serverURL()
	if err != nil {
		return err
	}
	token, err := n.cfg.token()
	if err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("an agent needs a token (token-file or token)")
	}
	secret, wantHash := tokenSecret(token)
	server := u.Scheme + "://" + u.Host
	var caPEM []byte
	for i := 0; ; i++ {
		caPEM, err = discoverCA(n.ctx, server, secret, wantHash)
		if err == nil {
			break
		}
		if i%10 == 0 {
			logf("waiting to join %s: %v", server, err)
		}
		time.Sleep(3 * time.Second)
	}
	logf("joined %s: cluster CA verified with the token", server)
	caFile := n.path("agent", "server-ca.crt")
	if err := writeFileAtomic(caFile, caPEM, 0o644); err != nil {
		return err
	}
	id, tsecret := bootstrapToken(secret)
	boot := n.path("agent", "kubelet-bootstrap.kubeconfig")
	if err := writeFileAtomic(boot, kubeconfigText(server, caPEM, nil, nil, id+"."+tsecret), 0o600); err != nil {
		return err
	}
	if err := n.startNode(n.path("agent", "kubelet.kubeconfig"), boot, nil); err != nil {
		return err
	}
	sdNotify("READY=1")
	logf("agent started; node %s joins %s", n.name, server)
	return nil
}

// startNode runs containerd (its config rendered as K3s would) and the kubelet, imports the
// airgap images, and writes the CNI config once the node has its pod CIDR.
func (n *node) startNode(kubeconfig, bootstrap string, extraLabels []string) error {
	runtimes, err := writeContainerdConfig(n.ctd, n.cfg)
	if err != nil {
		return err
	}
	names := []string{}
	for k := range runtimes {
		names = append(names, k+"="+runtimes[k].BinaryName)
	}
	logf("containerd config %s written; NVIDIA runtimes detected: %v", filepath.Join(n.ctd.etc, "config.toml"), names)
	if err := n.sup.start("containerd", n.component("containerd"), []string{
		"--config=" + filepath.Join(n.ctd.etc, "config.toml"),
	}, nil); err != nil {
		return err
	}
	if err := n.waitContainerd(); err != nil {
		return err
	}
	n.importImages()

	kubeletConfig := n.path("agent", "etc", "kubelet.conf.yaml")
	if err := writeFileAtomic(kubeletConfig, []byte(n.kubeletConfig()), 0o600); err != nil {
		return err
	}
	args := []string{
		"--config=" + kubeletConfig, "--kubeconfig=" + kubeconfig, "--hostname-override=" + n.name,
		"--node-ip=" + n.ip, "--root-dir=" + kubeletRootDir,
	}
	if bootstrap != "" {
		args = append(args, "--bootstrap-kubeconfig="+bootstrap, "--cert-dir="+filepath.Join(kubeletRootDir, "pki"))
	}
	labels := n.cfg.strings("node-label")
	if len(labels) > 0 {
		args = append(args, "--node-labels="+strings.Join(labels, ","))
	}
	if taints := n.cfg.strings("node-taint"); len(taints) > 0 {
		args = append(args, "--register-with-taints="+strings.Join(taints, ","))
	}
	args = append(args, n.cfg.args("kubelet-arg")...)
	if err := n.sup.start("kubelet", n.component("kubelet"), args, nil); err != nil {
		return err
	}
	go n.watchNode(kubeconfig, extraLabels)
	return nil
}

func (n *node) kubeletConfig() string {
	driver := "cgroupfs"
	if systemdCgroup() {
		driver = "systemd"
	}
	oom := ""
	if !hasCapSysResource() {
		// A negative oom_score_adj needs CAP_SYS_RESOURCE, which this host does not give.
		oom = "oomScoreAdj: 0\n"
	}
	return fmt.Sprintf(`# Written by %s (NOT K3s) at every start.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
cgroupDriver: %s
clusterDNS: [%s]
clusterDomain: %s
containerRuntimeEndpoint: unix://%s
failCgroupV1: false
failSwapOn: false
healthzBindAddress: 127.0.0.1
%sresolvConf: /etc/resolv.conf
rotateCertificates: true
serializeImagePulls: false
evictionHard:
  imagefs.available: 5%%
  nodefs.available: 5%%
`, Name, n.path("agent", "server-ca.crt"), driver, n.cfg.or("cluster-dns", defaultClusterDNS),
		n.cfg.or("cluster-domain", defaultDomain), containerdSock, oom)
}

func (n *node) waitContainerd() error {
	for i := 0; i < 120; i++ {
		if c, err := net.Dial("unix", containerdSock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("containerd did not open %s within 60s (see %s)", containerdSock, filepath.Join(n.sup.logDir, "containerd.log"))
}

// importImages imports <data-dir>/agent/images/*.tar* (K3s's airgap image folder) with ctr.
func (n *node) importImages() {
	files, _ := filepath.Glob(n.path("agent", "images", "*.tar*"))
	for _, f := range files {
		out, err := exec.Command(n.component("ctr"), "--address", containerdSock, "-n", "k8s.io",
			"images", "import", "--all-platforms", f).CombinedOutput()
		if err != nil {
			logf("importing %s failed: %v: %s", f, err, out)
			continue
		}
		logf("imported images from %s", f)
	}
}

// watchNode waits for the node object, gives it the server's extra labels and writes the
// CNI config (a bridge on the node's pod CIDR) when the controller-manager assigned one.
func (n *node) watchNode(kubeconfig string, extraLabels []string) {
	var cs *kubernetes.Clientset
	var err error
	for {
		if _, e := os.Stat(kubeconfig); e == nil {
			if cs, err = clientFor(kubeconfig); err == nil {
				break
			}
		}
		time.Sleep(2 * time.Second)
	}
	labelled := len(extraLabels) == 0
	for {
		nd, err := cs.CoreV1().Nodes().Get(n.ctx, n.name, metav1.GetOptions{})
		if err == nil {
			if !labelled {
				labelled = n.label(nd, extraLabels)
			}
			if nd.Spec.PodCIDR != "" {
				if err := n.writeCNI(nd.Spec.PodCIDR); err != nil {
					logf("writing the CNI config: %v", err)
				} else if labelled {
					return
				}
			}
		}
		time.Sleep(2 * time.Second)
	}
}

// label adds labels a kubelet may not set itself (node-role.kubernetes.io/...); only the
// server does this, with its admin credentials.
func (n *node) label(nd *corev1.Node, labels []string) bool {
	cs, err := clientFor(n.path("server", "cred", "admin.kubeconfig"))
	if err != nil {
		return false
	}
	m := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		if nd.Labels[k] != v {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return true
	}
	patch, _ := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{"labels": m}})
	_, err = cs.CoreV1().Nodes().Patch(n.ctx, n.name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err == nil
}

func (n *node) writeCNI(podCIDR string) error {
	plugins := []map[string]interface{}{{
		"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
		"ipam": map[string]interface{}{
			"type":   "host-local",
			"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}}
	if _, err := exec.LookPath("iptables"); err == nil {
		plugins = append(plugins, map[string]interface{}{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	conf := map[string]interface{}{"cniVersion": "1.0.0", "name": Name, "plugins": plugins}
	data, _ := json.MarshalIndent(conf, "", "  ")
	path := filepath.Join(n.ctd.cniConf, "10-"+Name+".conflist")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	logf("pod CIDR %s: writing %s", podCIDR, path)
	return writeFileAtomic(path, data, 0o644)
}
