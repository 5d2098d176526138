package launcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Fixed paths: the ones K3s uses, so that the collection's roles find them.
const (
	configFile         = "/etc/rancher/k3s/config.yaml"
	kubeconfigAdmin    = "/etc/rancher/k3s/k3s.yaml"
	defaultDataDir     = "/var/lib/rancher/k3s"
	containerdSock     = "/run/k3s/containerd/containerd.sock"
	containerdState    = "/run/k3s/containerd"
	kubeletRootDir     = "/var/lib/kubelet"
	defaultClusterCIDR = "10.42.0.0/16"
	defaultServiceCIDR = "10.43.0.0/16"
	defaultClusterDNS  = "10.43.0.10"
	defaultDomain      = "cluster.local"
)

type role string

const (
	roleServer role = "server"
	roleAgent  role = "agent"
)

// config is config.yaml merged with config.yaml.d/*.yaml (sorted), K3s's rules: a later file
// replaces a key, `key+:` appends to a list.
type config struct {
	values map[string]interface{}
	files  []string
}

// Keys k3s-upstream implements, per role. Anything else is refused (it is not K3s and must
// not pretend to honour a setting it ignores), except the keys in ignoredKeys.
var serverKeys = map[string]bool{
	"data-dir": true, "token": true, "token-file": true, "agent-token": false, "node-name": true,
	"node-label": true, "node-taint": true, "node-ip": true, "default-runtime": true,
	"write-kubeconfig": true, "write-kubeconfig-mode": true, "tls-san": true, "disable": true,
	"kubelet-arg": true, "kube-apiserver-arg": true, "kube-controller-manager-arg": true,
	"kube-scheduler-arg": true, "https-listen-port": true, "cluster-cidr": true, "service-cidr": true,
	"cluster-dns": true, "cluster-domain": true, "snapshotter": true, "cluster-init": true,
	"flannel-backend": true, "disable-network-policy": true, "disable-kube-proxy": true,
	"disable-helm-controller": true, "disable-cloud-controller": true, "pause-image": true,
}

var agentKeys = map[string]bool{
	"data-dir": true, "token": true, "token-file": true, "server": true, "node-name": true,
	"node-label": true, "node-taint": true, "node-ip": true, "default-runtime": true,
	"kubelet-arg": true, "snapshotter": true, "pause-image": true,
}

// Settings that change nothing k3s-upstream does (they concern parts it does not run).
var ignoredKeys = map[string]string{
	"selinux":            "no SELinux here",
	"debug":              "logging",
	"v":                  "logging",
	"kube-proxy-arg":     "k3s-upstream runs no kube-proxy",
	"flannel-iface":      "k3s-upstream runs no flannel",
	"prefer-bundled-bin": "k3s-upstream always uses its payload",
}

func loadConfig(path string) (*config, error) {
	c := &config{values: map[string]interface{}{}}
	files := []string{}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	dropins, _ := filepath.Glob(path + ".d/*.yaml")
	more, _ := filepath.Glob(path + ".d/*.yml")
	dropins = append(dropins, more...)
	sort.Strings(dropins)
	files = append(files, dropins...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %v", f, err)
		}
		m := map[string]interface{}{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s is not valid YAML: %v", f, err)
		}
		for k, v := range m {
			if strings.HasSuffix(k, "+") {
				base := strings.TrimSuffix(k, "+")
				c.values[base] = append(asList(c.values[base]), asList(v)...)
				continue
			}
			c.values[k] = v
		}
	}
	c.files = files
	return c, nil
}

// check refuses keys this role does not implement.
func (c *config) check(r role) error {
	known := serverKeys
	if r == roleAgent {
		known = agentKeys
	}
	var bad []string
	for k := range c.values {
		if known[k] {
			continue
		}
		if why, ok := ignoredKeys[k]; ok {
			logf("config key %q is ignored (%s)", k, why)
			continue
		}
		bad = append(bad, k)
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return fmt.Errorf("config key(s) %s in %s are K3s settings that %s (NOT K3s) does not implement for '%s'; remove them",
			strings.Join(bad, ", "), strings.Join(c.files, ", "), Name, r)
	}
	if c.bool("docker") {
		return fmt.Errorf("docker: true is not implemented by %s", Name)
	}
	return nil
}

func asList(v interface{}) []interface{} {
	switch t := v.(type) {
	case nil:
		return nil
	case []interface{}:
		return t
	default:
		return []interface{}{t}
	}
}

func (c *config) str(key string) string {
	v, ok := c.values[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (c *config) strings(key string) []string {
	var out []string
	for _, v := range asList(c.values[key]) {
		// K3s accepts comma-separated values in list settings too.
		for _, part := range strings.Split(fmt.Sprint(v), ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// args: kubelet-arg style lists, one "flag=value" per item (never split on commas).
func (c *config) args(key string) []string {
	var out []string
	for _, v := range asList(c.values[key]) {
		s := strings.TrimSpace(fmt.Sprint(v))
		if s == "" {
			continue
		}
		out = append(out, "--"+strings.TrimLeft(s, "-"))
	}
	return out
}

func (c *config) bool(key string) bool {
	switch t := c.values[key].(type) {
	case bool:
		return t
	case string:
		return t == "true"
	}
	return false
}

func (c *config) or(key, def string) string {
	if v := c.str(key); v != "" {
		return v
	}
	return def
}

func (c *config) dataDir() string { return c.or("data-dir", defaultDataDir) }

func (c *config) nodeName() string {
	if n := c.str("node-name"); n != "" {
		return strings.ToLower(n)
	}
	h, _ := os.Hostname()
	return strings.ToLower(h)
}

func (c *config) port() string { return c.or("https-listen-port", "6443") }

// serverURL: the server an agent joins (host:port).
func (c *config) serverURL() (*url.URL, error) {
	raw := c.str("server")
	if raw == "" {
		return nil, fmt.Errorf("an agent needs 'server: https://<server>:6443' in its config")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an https URL", raw)
	}
	return u, nil
}

// token reads token-file (preferred) or token.
func (c *config) token() (string, error) {
	if f := c.str("token-file"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("cannot read token-file: %v", err)
		}
		if t := strings.TrimSpace(string(data)); t != "" {
			return t, nil
		}
	}
	return c.str("token"), nil
}

// tokenSecret: the secret part of a K3s token (K10<ca-hash>::<user>:<secret>), or the
// token itself when it is a plain secret. caHash is "" for a plain secret.
func tokenSecret(token string) (secret, caHash string) {
	if strings.HasPrefix(token, "K10") && strings.Contains(token, "::") {
		parts := strings.SplitN(token, "::", 2)
		cred := parts[1]
		if i := strings.LastIndex(cred, ":"); i >= 0 {
			cred = cred[i+1:]
		}
		return cred, strings.TrimPrefix(parts[0], "K10")
	}
	return token, ""
}

// bootstrapToken derives the Kubernetes bootstrap token (id.secret) agents use from the
// cluster token's secret: both sides compute it, the secret never travels.
func bootstrapToken(secret string) (id, tokenSecret string) {
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	return h("k3s-upstream-bootstrap-id:" + secret)[:6], h("k3s-upstream-bootstrap-secret:" + secret)[:16]
}
