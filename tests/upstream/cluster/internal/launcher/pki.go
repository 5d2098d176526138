package launcher

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate and its key, as files.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
	crt  string // path of the PEM certificate
	kf   string // path of the PEM key
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func readPair(crt, kf string) (*keyPair, error) {
	cdata, err := os.ReadFile(crt)
	if err != nil {
		return nil, err
	}
	kdata, err := os.ReadFile(kf)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(cdata)
	kb, _ := pem.Decode(kdata)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", crt, kf)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, crt: crt, kf: kf}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// loadOrCreateCA keeps an existing CA (the cluster's identity), or makes one.
func loadOrCreateCA(dir, name, cn string) (*keyPair, error) {
	crt, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if p, err := readPair(crt, kf); err == nil {
		return p, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", cn, time.Now().Unix())},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return store(crt, kf, tmpl, tmpl, key, key)
}

// issue writes a certificate signed by ca. A client certificate is kept while valid; a
// serving certificate is made again at every start (its addresses may have changed).
func issue(ca *keyPair, dir, name, cn string, orgs []string, client bool, dns []string, ips []net.IP) (*keyPair, error) {
	crt, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if client {
		if p, err := readPair(crt, kf); err == nil && p.cert.Subject.CommonName == cn && time.Until(p.cert.NotAfter) > 30*24*time.Hour {
			return p, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if client {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	return store(crt, kf, tmpl, ca.cert, key, ca.key)
}

// store signs tmpl with signer (as parent), writes the key and the certificate to kf and crt,
// and reads them back as a pair.
func store(crt, kf string, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (*keyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	if err := writeKey(kf, key); err != nil {
		return nil, err
	}
	if err := writePEM(crt, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return readPair(crt, kf)
}

// serviceAccountKey keeps or makes the service account signing key (PEM key + public key).
func serviceAccountKey(dir string) (string, string, error) {
	kf, pub := filepath.Join(dir, "service.key"), filepath.Join(dir, "service.pub")
	if _, err := os.Stat(kf); err == nil {
		if _, err := os.Stat(pub); err == nil {
			return kf, pub, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	if err := writeKey(kf, key); err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	return kf, pub, writePEM(pub, "PUBLIC KEY", der, 0o644)
}

// caHash is the sha256 of the CA certificate file, as K3s puts it in K10 tokens.
func caHash(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
