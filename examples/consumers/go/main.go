// Command consumer verifies JWTs against the JWKS a Keyturn JwtKeySet publishes, following
// every rotation without a restart, and exports the two metrics Keyturn's gates read.
//
//	consumer --jwks /var/run/keyturn/jwks/jwks.json --listen :8080
//
//	GET /verify   Authorization: Bearer <token> -> 200 {"valid":true,...} or 401 {"valid":false,"reason":...}
//	GET /metrics  jwt_keys_loaded{kid}, jwt_validations_total{result,reason,kid}
//
// The contract it implements is docs/consumers.md of the Keyturn repository.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	jwksPath := flag.String("jwks", "/var/run/keyturn/jwks/jwks.json",
		"the <keyset>-jwks ConfigMap's jwks.json, mounted as a volume without subPath")
	listen := flag.String("listen", ":8080", "address of /verify and /metrics (port 0 picks one)")
	interval := flag.Duration("interval", time.Second, "how often the JWKS file is re-read")
	audience := flag.String("audience", "", "required aud claim (empty: not checked)")
	issuer := flag.String("issuer", "", "required iss claim (empty: not checked)")
	flag.Parse()

	registry := prometheus.NewRegistry()
	metrics := newMetrics(registry)
	keys := newKeyStore(*jwksPath, metrics)
	if err := keys.reload(); err != nil {
		log.Fatalf("loading %s: %v", *jwksPath, err) // a wrong mount fails at start-up
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go keys.watch(ctx, *interval)

	verifier := &verifier{keys: keys, metrics: metrics, audience: *audience, issuer: *issuer}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /verify", verifier.serveHTTP)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Shutdown(context.Background())
	}()
	if err := server.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func (v *verifier) serveHTTP(w http.ResponseWriter, r *http.Request) {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || token == "" {
		http.Error(w, "send Authorization: Bearer <token>", http.StatusBadRequest) // not counted
		return
	}
	kid, reason := v.verify(token)
	status, body := http.StatusOK, map[string]any{"valid": true, "kid": kid}
	if reason != reasonOK {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		status, body = http.StatusUnauthorized, map[string]any{"valid": false, "reason": reason, "kid": kid}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
