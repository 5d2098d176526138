package launcher

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
)

// Joins use Kubernetes' own bootstrap mechanisms, not K3s's supervisor protocol (which
// k3s-upstream does not have):
//   - the server keeps a bootstrap token (kube-system/bootstrap-token-<id>) derived from the
//     cluster token's secret, and a kube-public/cluster-info ConfigMap that the
//     kube-controller-manager's bootstrapsigner signs with it;
//   - an agent derives the same token, reads cluster-info anonymously, checks its signature
//     (and, with a K10 token, the CA's sha256) and so learns the cluster CA; its kubelet then
//     gets a client certificate by TLS bootstrapping (a CSR the controller-manager approves).

const bootstrapGroup = "system:bootstrappers:k3s-upstream"

// kubeconfigText is a kubeconfig with everything embedded.
func kubeconfigText(server string, caPEM []byte, certPEM, keyPEM []byte, token string) []byte {
	var user string
	if token != "" {
		user = fmt.Sprintf("    token: %s\n", token)
	} else {
		user = fmt.Sprintf("    client-certificate-data: %s\n    client-key-data: %s\n",
			base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM))
	}
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {}
users:
- name: default
  user:
%s`, base64.StdEncoding.EncodeToString(caPEM), server, user))
}

func writeKubeconfig(path, server string, ca, client *keyPair, mode os.FileMode) error {
	caPEM, err := os.ReadFile(ca.crt)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(client.crt)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(client.kf)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, kubeconfigText(server, caPEM, certPEM, keyPEM, ""), mode)
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.Timeout = 15 * time.Second
	return kubernetes.NewForConfig(rc)
}

// waitReady waits for the apiserver's /readyz.
func waitReady(ctx context.Context, cs *kubernetes.Clientset, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		last = err
		time.Sleep(time.Second)
	}
	return fmt.Errorf("the kube-apiserver was not ready within %s: %v", timeout, last)
}

// applyBootstrap creates (or updates) the objects agents need to join.
func applyBootstrap(ctx context.Context, cs *kubernetes.Clientset, secret, apiURL string, caPEM []byte) error {
	id, tsecret := bootstrapToken(secret)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.BootstrapTokenSecretPrefix + id, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": Name}},
		Type: bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           tsecret,
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      bootstrapGroup,
			bootstrapapi.BootstrapTokenDescriptionKey:      "k3s-upstream: agents join with it (derived from the cluster token)",
		},
	}
	if err := upsertSecret(ctx, cs, s); err != nil {
		return err
	}
	// Only the cluster part (server URL and CA); no credential is published.
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: metav1.NamespacePublic},
		Data:       map[string]string{bootstrapapi.KubeConfigKey: clusterOnlyKubeconfig(apiURL, caPEM)},
	}
	if old, err := cs.CoreV1().ConfigMaps(cm.Namespace).Get(ctx, cm.Name, metav1.GetOptions{}); err == nil {
		if old.Data[bootstrapapi.KubeConfigKey] != cm.Data[bootstrapapi.KubeConfigKey] {
			old.Data = cm.Data // the bootstrapsigner adds the signatures again
			if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, old, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
	} else if apierrors.IsNotFound(err) {
		if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	} else {
		return err
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "k3s-upstream:cluster-info-reader", Namespace: metav1.NamespacePublic},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{bootstrapapi.ConfigMapClusterInfo}, Verbs: []string{"get"}}},
	}
	if err := upsertRole(ctx, cs, role); err != nil {
		return err
	}
	if err := upsertRoleBinding(ctx, cs, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "k3s-upstream:cluster-info-reader", Namespace: metav1.NamespacePublic},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "system:anonymous"}},
	}); err != nil {
		return err
	}
	bindings := []struct{ name, role, group string }{
		{"k3s-upstream:kubelet-bootstrap", "system:node-bootstrapper", bootstrapGroup},
		{"k3s-upstream:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrapGroup},
		{"k3s-upstream:node-autoapprove-renewal", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
	}
	for _, b := range bindings {
		if err := upsertClusterRoleBinding(ctx, cs, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: b.group}},
		}); err != nil {
			return err
		}
	}
	return nil
}

func clusterOnlyKubeconfig(apiURL string, caPEM []byte) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\npreferences: {}\nusers: null\n",
		base64.StdEncoding.EncodeToString(caPEM), apiURL)
}

func upsertSecret(ctx context.Context, cs *kubernetes.Clientset, s *corev1.Secret) error {
	c := cs.CoreV1().Secrets(s.Namespace)
	old, err := c.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, s, metav1.CreateOptions{})
		return err
	} else if err != nil {
		return err
	}
	same := true
	for k, v := range s.StringData {
		if string(old.Data[k]) != v {
			same = false
		}
	}
	if same {
		return nil
	}
	old.Data, old.StringData = nil, s.StringData
	_, err = c.Update(ctx, old, metav1.UpdateOptions{})
	return err
}

func upsertRole(ctx context.Context, cs *kubernetes.Clientset, r *rbacv1.Role) error {
	c := cs.RbacV1().Roles(r.Namespace)
	if _, err := c.Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func upsertRoleBinding(ctx context.Context, cs *kubernetes.Clientset, r *rbacv1.RoleBinding) error {
	c := cs.RbacV1().RoleBindings(r.Namespace)
	if _, err := c.Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func upsertClusterRoleBinding(ctx context.Context, cs *kubernetes.Clientset, r *rbacv1.ClusterRoleBinding) error {
	c := cs.RbacV1().ClusterRoleBindings()
	if _, err := c.Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// discoverCA is the agent's side: it reads cluster-info from the server without trusting
// it yet, checks the bootstrapsigner's signature made with the token both sides derive
// (and the CA hash of a K10 token), and returns the cluster CA (PEM).
func discoverCA(ctx context.Context, server, secret, wantHash string) ([]byte, error) {
	id, tsecret := bootstrapToken(secret)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// Not trusted until the signature below is checked.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	url := strings.TrimRight(server, "/") + "/api/v1/namespaces/kube-public/configmaps/" + bootstrapapi.ConfigMapClusterInfo
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(body, &cm); err != nil {
		return nil, err
	}
	content := cm.Data[bootstrapapi.KubeConfigKey]
	sig, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
	if !ok {
		return nil, fmt.Errorf("cluster-info is not signed for this token yet (wrong token, or the server's controller-manager has not signed it)")
	}
	if !jws.DetachedTokenIsValid(sig, content, id, tsecret) {
		return nil, fmt.Errorf("cluster-info's signature does not match this token: the token is wrong")
	}
	kc, err := clientcmd.Load([]byte(content))
	if err != nil {
		return nil, err
	}
	for _, c := range kc.Clusters {
		if wantHash != "" {
			tmp := filepath.Join(os.TempDir(), "k3s-upstream-ca-check")
			os.WriteFile(tmp, c.CertificateAuthorityData, 0o600)
			got, _ := caHash(tmp)
			os.Remove(tmp)
			if got != wantHash {
				return nil, fmt.Errorf("the server's CA has sha256 %s, the K10 token names %s", got, wantHash)
			}
		}
		return c.CertificateAuthorityData, nil
	}
	return nil, fmt.Errorf("cluster-info holds no cluster")
}
