package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const maxDocumentBytes = 1 << 20 // a ConfigMap holds at most 1 MiB

// Algorithms a JWKS may pin a key to: Keyturn's asymmetric ones. HS* never comes from a JWKS.
var jwksAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// The kty (and for ES*, the crv) each algorithm needs.
var ktyOf = map[string]string{"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
var crvOf = map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}

// Members that make a JWK a private (or symmetric) key: a JWKS carrying one has leaked it.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// verificationKey is one usable key, pinned to the algorithm its JWK declares.
type verificationKey struct {
	alg jwa.SignatureAlgorithm
	key jwk.Key
}

// keyStore holds the keys of the last good version of the JWKS file.
type keyStore struct {
	path    string
	metrics *metrics

	mu   sync.RWMutex
	keys map[string]verificationKey

	last      []byte          // the bytes last loaded; only reload() touches it
	withdrawn map[string]bool // kids whose private key was published: never trusted again
}

func newKeyStore(path string, m *metrics) *keyStore {
	return &keyStore{path: path, metrics: m, withdrawn: map[string]bool{}}
}

func (s *keyStore) lookup(kid string) (verificationKey, bool, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key, ok := s.keys[kid]
	return key, ok, len(s.keys)
}

// watch re-reads the file every interval. The kubelet updates a ConfigMap volume by renaming a
// new ..data symlink over the old one, so the path always opens a complete version; comparing
// the bytes catches every swap (and plain rewrites when run locally).
func (s *keyStore) watch(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.reload(); err != nil {
				log.Printf("JWKS %s not reloaded, keeping the previous keys: %v", s.path, err)
			}
		}
	}
}

// reload loads the file when it changed. A document that cannot be used keeps the previous
// keys, except that keys whose private part it publishes are withdrawn at once.
func (s *keyStore) reload() error {
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	if s.keys != nil && bytes.Equal(raw, s.last) {
		return nil
	}
	s.last = raw
	keys, leaked, err := parseJWKS(raw)
	if len(leaked) > 0 {
		for _, kid := range leaked {
			s.withdrawn[kid] = true
		}
		s.mu.RLock()
		keys = s.keys // the previous version, minus the leaked kids below
		s.mu.RUnlock()
		err = fmt.Errorf("the JWKS publishes private key material for kids %q: they are never trusted again", leaked)
	} else if err != nil {
		return err
	}
	usable := map[string]verificationKey{}
	for kid, key := range keys {
		if !s.withdrawn[kid] {
			usable[kid] = key
		}
	}
	s.mu.Lock()
	s.keys = usable
	s.mu.Unlock()
	kids := make([]string, 0, len(usable))
	for kid := range usable {
		kids = append(kids, kid)
	}
	s.metrics.setLoaded(kids)
	log.Printf("JWKS %s loaded: kids %q", s.path, kids)
	return err
}

// parseJWKS reads an RFC 7517 JWK Set. Entries a verifier must not use (no kid, another use than
// sig, no alg or an alg a JWKS cannot pin) are skipped; entries with private members are
// returned as leaked and the document is not used at all.
func parseJWKS(raw []byte) (map[string]verificationKey, []string, error) {
	if len(raw) > maxDocumentBytes {
		return nil, nil, fmt.Errorf("larger than %d bytes", maxDocumentBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Keys == nil {
		return nil, nil, fmt.Errorf(`not a JSON object with a "keys" array`)
	}
	keys := map[string]verificationKey{}
	var leaked []string
	for i, entry := range doc.Keys {
		var members map[string]json.RawMessage
		var head struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			Crv string `json:"crv"`
		}
		if json.Unmarshal(entry, &members) != nil || json.Unmarshal(entry, &head) != nil {
			log.Printf("JWKS entry %d ignored: not a JWK", i)
			continue
		}
		if head.Kty == "oct" || slices.ContainsFunc(privateMembers, func(m string) bool { _, ok := members[m]; return ok }) {
			leaked = append(leaked, head.Kid)
			continue
		}
		switch {
		case head.Kid == "":
			log.Printf("JWKS entry %d ignored: no kid", i)
		case head.Use != "" && head.Use != "sig":
			log.Printf("JWKS kid %q ignored: use is not sig", head.Kid)
		case !slices.Contains(jwksAlgorithms, head.Alg):
			log.Printf("JWKS kid %q ignored: alg must pin one of %v", head.Kid, jwksAlgorithms)
		case head.Kty != ktyOf[head.Alg[:2]] || (crvOf[head.Alg] != "" && head.Crv != crvOf[head.Alg]):
			log.Printf("JWKS kid %q ignored: a %s/%s key cannot verify %s", head.Kid, head.Kty, head.Crv, head.Alg)
		default:
			if _, dup := keys[head.Kid]; dup {
				log.Printf("JWKS kid %q appears twice; the first entry is used", head.Kid)
				continue
			}
			key, err := jwk.ParseKey(entry)
			alg, _ := jwa.LookupSignatureAlgorithm(head.Alg)
			if err != nil {
				log.Printf("JWKS kid %q ignored: %v", head.Kid, err)
				continue
			}
			keys[head.Kid] = verificationKey{alg: alg, key: key}
		}
	}
	return keys, leaked, nil
}
