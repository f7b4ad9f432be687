package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// The reason label values of jwt_validations_total (keyturn.client.ValidationReason).
const (
	reasonOK            = "ok"
	reasonMalformed     = "malformed"
	reasonMissingKid    = "missing_kid"
	reasonUnknownKid    = "unknown_kid"
	reasonWrongAlg      = "wrong_alg"
	reasonBadSignature  = "bad_signature"
	reasonExpired       = "expired"
	reasonNotYetValid   = "not_yet_valid"
	reasonBadAudience   = "bad_audience"
	reasonBadIssuer     = "bad_issuer"
	reasonMissingClaim  = "missing_claim"
	reasonInvalidClaims = "invalid_claims"
	reasonNoKeys        = "no_keys"
)

const (
	maxTokenChars = 16 * 1024
	leeway        = 5 * time.Second // pods' clocks differ by a little
)

type verifier struct {
	keys     *keyStore
	metrics  *metrics
	audience string
	issuer   string
}

// verify checks one token and counts it once; it returns the header kid and the reason.
func (v *verifier) verify(token string) (*string, string) {
	kid, reason := v.check(token)
	v.metrics.record(reason, kid)
	return kid, reason
}

func (v *verifier) check(token string) (*string, string) {
	alg, kid, ok := readHeader(token)
	if !ok {
		return kid, reasonMalformed
	}
	if strings.EqualFold(strings.TrimSpace(alg), "none") {
		return kid, reasonWrongAlg // never an unsigned token
	}
	if kid == nil {
		return nil, reasonMissingKid
	}
	key, found, count := v.keys.lookup(*kid)
	switch {
	case !found && count == 0:
		return kid, reasonNoKeys
	case !found:
		return kid, reasonUnknownKid
	case alg != key.alg.String():
		return kid, reasonWrongAlg // the key's JWK pins the algorithm, never the header
	}
	options := []jwt.ParseOption{
		jwt.WithKey(key.alg, key.key),
		jwt.WithAcceptableSkew(leeway),
		jwt.WithRequiredClaim("exp"),
	}
	if v.audience != "" {
		options = append(options, jwt.WithAudience(v.audience))
	}
	if v.issuer != "" {
		options = append(options, jwt.WithIssuer(v.issuer))
	}
	_, err := jwt.ParseString(token, options...)
	return kid, reasonFor(err)
}

// readHeader decodes the protected header of a compact JWS; it only selects the key. The kid
// is returned whenever it is a string, so that even a malformed token is counted under it.
func readHeader(token string) (alg string, kid *string, ok bool) {
	parts := strings.Split(token, ".")
	if len(token) > maxTokenChars || len(parts) != 3 {
		return "", nil, false
	}
	var header map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &header) != nil {
		return "", nil, false
	}
	if value, present := header["kid"]; present {
		s, isString := value.(string)
		if !isString {
			return "", nil, false
		}
		kid = &s
	}
	alg, isString := header["alg"].(string)
	return alg, kid, isString && alg != ""
}

func reasonFor(err error) string {
	switch {
	case err == nil:
		return reasonOK
	case errors.Is(err, jws.VerificationError()), errors.Is(err, jws.VerifyError()):
		return reasonBadSignature
	case errors.Is(err, jwt.TokenExpiredError()):
		return reasonExpired
	case errors.Is(err, jwt.TokenNotYetValidError()), errors.Is(err, jwt.InvalidIssuedAtError()):
		return reasonNotYetValid
	case errors.Is(err, jwt.InvalidAudienceError()):
		return reasonBadAudience
	case errors.Is(err, jwt.InvalidIssuerError()):
		return reasonBadIssuer
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return reasonMissingClaim
	case errors.Is(err, jwt.ValidateError()):
		return reasonInvalidClaims
	default:
		return reasonMalformed
	}
}
