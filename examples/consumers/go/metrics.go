package main

import (
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const maxForeignKids = 32

var kidLabelPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// metrics are the two series Keyturn's gates read, with the labels and values of the Python
// client (keyturn.client.metrics): the propagation gate counts jwt_keys_loaded{kid} per
// instance, the analysis gate divides the success rate of jwt_validations_total by the total.
type metrics struct {
	keysLoaded  *prometheus.GaugeVec
	validations *prometheus.CounterVec

	mu      sync.Mutex
	loaded  map[string]bool // kids exported in jwt_keys_loaded now
	trusted map[string]bool // every kid ever loaded: always a label value as it is
	foreign map[string]bool // other well-formed header kids seen, at most maxForeignKids
}

func newMetrics(registry prometheus.Registerer) *metrics {
	m := &metrics{
		keysLoaded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jwt_keys_loaded",
			Help: "1 for every key id this process currently accepts",
		}, []string{"kid"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_validations_total",
			Help: "JWT validations by result (success|failure), reason and key id",
		}, []string{"result", "reason", "kid"}),
		loaded:  map[string]bool{},
		trusted: map[string]bool{},
		foreign: map[string]bool{},
	}
	registry.MustRegister(m.keysLoaded, m.validations)
	return m
}

// setLoaded exports exactly the kids accepted now: a new kid's series appears (with its success
// counter at 0, so rate() sees the first validations), a dropped kid's series disappears.
func (m *metrics) setLoaded(kids []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := map[string]bool{}
	for _, kid := range kids {
		now[kid] = true
		m.trusted[kid] = true
		if !m.loaded[kid] {
			m.keysLoaded.WithLabelValues(kid).Set(1)
			m.validations.WithLabelValues("success", reasonOK, kid)
		}
	}
	for kid := range m.loaded {
		if !now[kid] {
			m.keysLoaded.DeleteLabelValues(kid)
		}
	}
	m.loaded = now
}

// record counts one verification. kid is the token header's (nil when absent): untrusted, so
// the label is bounded as in the Python client.
func (m *metrics) record(reason string, kid *string) {
	result := "failure"
	if reason == reasonOK {
		result = "success"
	}
	m.validations.WithLabelValues(result, reason, m.kidLabel(kid)).Inc()
}

func (m *metrics) kidLabel(kid *string) string {
	switch {
	case kid == nil:
		return ""
	case !kidLabelPattern.MatchString(*kid):
		return "_invalid"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trusted[*kid] || m.foreign[*kid] {
		return *kid
	}
	if len(m.foreign) < maxForeignKids {
		m.foreign[*kid] = true
		return *kid
	}
	return "_other"
}
