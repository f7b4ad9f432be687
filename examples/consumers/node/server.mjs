// Verifies JWTs against the JWKS a Keyturn JwtKeySet publishes, following every rotation without
// a restart, and exports the two metrics Keyturn's gates read.
//
//   node server.mjs --jwks /var/run/keyturn/jwks/jwks.json --listen 0.0.0.0:8080
//
//   GET /verify   Authorization: Bearer <token> -> 200 {"valid":true,...} or 401 {"valid":false,"reason":...}
//   GET /metrics  jwt_keys_loaded{kid}, jwt_validations_total{result,reason,kid}
//
// The contract it implements is docs/consumers.md of the Keyturn repository.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { decodeProtectedHeader, errors, importJWK, jwtVerify } from 'jose';
import client from 'prom-client';

const { values: args } = parseArgs({
  options: {
    jwks: { type: 'string', default: '/var/run/keyturn/jwks/jwks.json' },
    listen: { type: 'string', default: '0.0.0.0:8080' },
    interval: { type: 'string', default: '1' }, // seconds between re-reads of the file
    audience: { type: 'string' },
    issuer: { type: 'string' },
  },
});

const MAX_DOCUMENT_BYTES = 1 << 20; // a ConfigMap holds at most 1 MiB
const MAX_TOKEN_CHARS = 16 * 1024;
const LEEWAY_SECONDS = 5; // pods' clocks differ by a little
// Algorithms a JWKS may pin a key to, with the kty (and crv) each needs. HS* never comes from a JWKS.
const KEY_TYPES = {
  RS256: ['RSA'], RS384: ['RSA'], RS512: ['RSA'], PS256: ['RSA'], PS384: ['RSA'], PS512: ['RSA'],
  ES256: ['EC', 'P-256'], ES384: ['EC', 'P-384'], ES512: ['EC', 'P-521'], EdDSA: ['OKP', 'Ed25519'],
};
// Members that make a JWK a private (or symmetric) key: a JWKS carrying one has leaked it.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

// ---------------------------------------------------------------- metrics (as keyturn.client)

const registry = new client.Registry();
const keysLoaded = new client.Gauge({
  name: 'jwt_keys_loaded', help: '1 for every key id this process currently accepts',
  labelNames: ['kid'], registers: [registry],
});
const validations = new client.Counter({
  name: 'jwt_validations_total', help: 'JWT validations by result (success|failure), reason and key id',
  labelNames: ['result', 'reason', 'kid'], registers: [registry],
});
const trusted = new Set(); // every kid ever loaded: always a label value as it is
const foreign = new Set(); // other well-formed header kids, at most 32: a header is untrusted

function kidLabel(kid) {
  if (kid === undefined) return '';
  if (typeof kid !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(kid)) return '_invalid';
  if (trusted.has(kid) || foreign.has(kid)) return kid;
  if (foreign.size < 32) { foreign.add(kid); return kid; }
  return '_other';
}

function record(reason, kid) {
  validations.inc({ result: reason === 'ok' ? 'success' : 'failure', reason, kid: kidLabel(kid) });
}

// Export exactly the kids accepted now: a new kid's series appears (its success counter at 0, so
// rate() sees the first validations), a dropped kid's series disappears.
function setLoaded(before, after) {
  for (const kid of after) {
    trusted.add(kid);
    if (!before.has(kid)) {
      keysLoaded.set({ kid }, 1);
      validations.inc({ result: 'success', reason: 'ok', kid }, 0);
    }
  }
  for (const kid of before) if (!after.has(kid)) keysLoaded.remove({ kid });
}

// ---------------------------------------------------------------- the JWKS file

let keys = new Map(); // kid -> { alg, key }: the last good version
let lastText;
const withdrawn = new Set(); // kids whose private key was published: never trusted again

// Entries a verifier must not use are skipped; a document with private members is refused
// whole (the `leaked` kids are then withdrawn from the keys loaded before, too).
async function parseJwks(text) {
  const doc = JSON.parse(text);
  if (!doc || !Array.isArray(doc.keys)) throw new Error('not a JSON object with a "keys" array');
  const leaked = doc.keys.filter(
    (jwk) => jwk && typeof jwk === 'object' && (jwk.kty === 'oct' || PRIVATE_MEMBERS.some((m) => m in jwk)),
  );
  if (leaked.length) return { leaked: leaked.map((jwk) => jwk.kid) };
  const parsed = new Map();
  for (const jwk of doc.keys) {
    const [kty, crv] = KEY_TYPES[jwk?.alg] ?? [];
    if (typeof jwk?.kid !== 'string' || !jwk.kid) continue;
    if (parsed.has(jwk.kid) || (jwk.use ?? 'sig') !== 'sig' || jwk.kty !== kty || (crv && jwk.crv !== crv)) {
      console.error(`JWKS kid ${JSON.stringify(jwk.kid)} ignored: duplicate, not for signatures, or no usable alg`);
      continue;
    }
    try {
      parsed.set(jwk.kid, { alg: jwk.alg, key: await importJWK(jwk, jwk.alg) });
    } catch (err) {
      console.error(`JWKS kid ${JSON.stringify(jwk.kid)} ignored: ${err.message}`);
    }
  }
  return { keys: parsed };
}

// The kubelet updates a ConfigMap volume by renaming a new ..data symlink over the old one, so
// the path always opens a complete version; comparing the text catches every swap.
async function reload() {
  const text = await readFile(args.jwks, 'utf8');
  if (text === lastText) return;
  lastText = text;
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`larger than ${MAX_DOCUMENT_BYTES} bytes`);
  const result = await parseJwks(text);
  let next = result.keys;
  if (result.leaked) {
    result.leaked.forEach((kid) => withdrawn.add(kid));
    next = keys;
  }
  next = new Map([...next].filter(([kid]) => !withdrawn.has(kid)));
  setLoaded(new Set(keys.keys()), new Set(next.keys()));
  keys = next;
  console.error(`JWKS ${args.jwks} loaded: kids ${JSON.stringify([...keys.keys()])}`);
  if (result.leaked) throw new Error(`private key material published for kids ${JSON.stringify(result.leaked)}`);
}

// ---------------------------------------------------------------- verification

async function check(token) {
  const parts = token.split('.');
  let header;
  try {
    if (token.length > MAX_TOKEN_CHARS || parts.length !== 3) throw new Error();
    header = decodeProtectedHeader(token);
  } catch {
    return ['malformed'];
  }
  const { alg, kid } = header;
  if (kid !== undefined && typeof kid !== 'string') return ['malformed'];
  if (typeof alg !== 'string' || !alg) return ['malformed', kid];
  if (alg.trim().toLowerCase() === 'none') return ['wrong_alg', kid]; // never an unsigned token
  if (kid === undefined) return ['missing_kid'];
  const key = keys.get(kid);
  if (!key) return [keys.size ? 'unknown_kid' : 'no_keys', kid];
  if (alg !== key.alg) return ['wrong_alg', kid]; // the key's JWK pins the algorithm, never the header
  try {
    await jwtVerify(token, key.key, {
      algorithms: [key.alg], requiredClaims: ['exp'], clockTolerance: LEEWAY_SECONDS,
      audience: args.audience, issuer: args.issuer,
    });
    return ['ok', kid];
  } catch (err) {
    return [reasonFor(err), kid];
  }
}

function reasonFor(err) {
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'wrong_alg';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return 'missing_claim';
    return { nbf: 'not_yet_valid', iat: 'not_yet_valid', aud: 'bad_audience', iss: 'bad_issuer' }[err.claim]
      ?? 'invalid_claims';
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed';
  return 'error';
}

// ---------------------------------------------------------------- HTTP

function answer(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type, ...(status === 401 && { 'WWW-Authenticate': 'Bearer error="invalid_token"' }) });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

const server = http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && pathname === '/metrics') {
      return answer(res, 200, await registry.metrics(), registry.contentType);
    }
    if (req.method === 'GET' && pathname === '/verify') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token) return answer(res, 400, { error: 'send Authorization: Bearer <token>' }); // not counted
      const [reason, kid] = await check(token);
      record(reason, kid);
      return reason === 'ok'
        ? answer(res, 200, { valid: true, kid })
        : answer(res, 401, { valid: false, reason, kid: kid ?? null });
    }
    return answer(res, 404, { error: 'not found' });
  } catch (err) {
    console.error(err);
    return answer(res, 500, { error: 'internal error' });
  }
});

await reload(); // a wrong mount fails at start-up
let reloading = false;
setInterval(async () => {
  if (reloading) return;
  reloading = true;
  try {
    await reload();
  } catch (err) {
    console.error(`JWKS ${args.jwks} not reloaded, keeping the previous keys: ${err.message}`);
  } finally {
    reloading = false;
  }
}, Number(args.interval) * 1000);

const [host, port] = [args.listen.slice(0, args.listen.lastIndexOf(':')), Number(args.listen.slice(args.listen.lastIndexOf(':') + 1))];
server.listen(port, host, () => {
  const { address, port: bound } = server.address();
  console.log(`listening on http://${address}:${bound}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
