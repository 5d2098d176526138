package launcher

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// deployManifests is k3s-upstream's stand-in for K3s's auto-deploy of
// <data-dir>/server/manifests: every 10s, each *.yaml/*.yml/*.json file that is new or
// changed is applied with the real kubectl (server-side apply). Unlike K3s it does not delete
// the objects of a removed file and does not handle HelmChart resources (no helm-controller):
// such a file fails to apply and the failure is logged (k3s-upstream.log: "applying").
func (n *node) deployManifests(kubeconfig string) {
	dir := n.path("server", "manifests")
	applied := map[string]string{}
	for {
		files, _ := os.ReadDir(dir)
		names := []string{}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".skip") {
				continue
			}
			if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".json") {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			path := filepath.Join(dir, name)
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			sum := sha256.Sum256(data)
			h := hex.EncodeToString(sum[:])
			if applied[name] == h {
				continue
			}
			cmd := exec.Command(n.component("kubectl"), "--kubeconfig", kubeconfig, "apply", "--server-side",
				"--force-conflicts", "--field-manager="+Name+"-deploy", "-f", path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				logf("applying %s failed (retrying in 10s): %v: %s", path, err, strings.TrimSpace(string(out)))
				continue
			}
			applied[name] = h
			logf("applied %s: %s", path, strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
		}
		time.Sleep(10 * time.Second)
	}
}
