// Shared settings and helpers of the SDK compatibility tests. The Go test
// (../sdkcompat_test.go) starts a gitflags server on the flag repository
// template and passes its address and keys in environment variables.

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run these tests through "go test ./sdkcompat/", which starts a gitflags server and sets it`);
  }
  return v;
}

export const baseUrl = required('GITFLAGS_URL').replace(/\/+$/, '');
export const apiUrl = `${baseUrl}/api/v1/`;
export const clientKey = required('GITFLAGS_CLIENT_KEY');
export const serverKey = required('GITFLAGS_SERVER_KEY');
// Unique per run, so that identities stored by one run never meet another.
export const runId = process.env.GITFLAGS_RUN_ID || `sdkcompat-${process.pid}-${Date.now()}`;
export const identityCount = Number(process.env.GITFLAGS_IDENTITIES || 1000);

// The production environment of the template without an identity
// (flags-repo-template/features/*.json and environments/production/features/*.json).
export const productionFlags = {
  ai_assistant: { enabled: false, value: null },
  api_rate_limit: { enabled: true, value: 600 },
  banner_message: { enabled: false, value: '' },
  beta_features_banner: { enabled: false, value: null },
  dark_mode: { enabled: false, value: null },
  free_shipping_threshold: { enabled: true, value: '49.99' },
  legacy_api_sunset: { enabled: false, value: null },
  maintenance_mode: { enabled: false, value: null },
  max_cart_items: { enabled: true, value: 50 },
  new_checkout: { enabled: true, value: 'classic' },
  onboarding_flow: { enabled: true, value: 'v1' },
  payment_providers: { enabled: true, value: '["card","paypal"]' },
  recommendations_algorithm: { enabled: true, value: 'popularity' },
  search_provider: { enabled: true, value: 'elastic' },
};
export const flagNames = Object.keys(productionFlags).sort();

// The SDK logs through pino (JSON on stdout) by default; stdout belongs to
// the test reporter, so warnings and errors go to stderr and the rest is dropped.
export const quietLogger = {
  error: (...a) => console.error('flagsmith-nodejs error:', ...a.map(fmtLogArg)),
  warn: (...a) => console.error('flagsmith-nodejs warn:', ...a.map(fmtLogArg)),
  info: () => {},
  debug: () => {},
  trace: () => {},
  fatal: (...a) => console.error('flagsmith-nodejs fatal:', ...a.map(fmtLogArg)),
  child() { return this; },
};

function fmtLogArg(a) {
  if (a instanceof Error) {
    return a.cause ? `${a.stack}\n  cause: ${a.cause?.stack ?? a.cause}` : a.stack;
  }
  return a;
}

// flagState reduces an SDK Flags object to {name: {enabled, value}} over names.
export function flagStates(flags, names = flagNames) {
  const out = {};
  for (const name of names) {
    const f = flags.getFlag(name);
    out[name] = { enabled: f.enabled, value: f.value ?? null, isDefault: f.isDefault };
  }
  return out;
}

// errorChain prints an error with its causes (the SDK wraps HTTP errors).
export function errorChain(e) {
  const parts = [];
  for (let c = e; c; c = c.cause) {
    parts.push(String(c?.message ?? c));
  }
  return parts.join(' <- ');
}

// mapLimit runs fn over items with at most limit in flight, in order of items.
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// mulberry32 is a small deterministic PRNG (same seed, same identities).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
