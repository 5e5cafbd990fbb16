// A deterministic generator of identities with traits that exercise every
// segment of the flag repository template (flags-repo-template/segments):
// matching, near misses and wrong types.
//
// It leaves out trait values on which flagsmith-nodejs 8.1.2's own local
// engine departs from the reference engine (see ../../shared/reference/
// flagsmith-engine-semantics.md), because there the SDK, not gitflags,
// decides the disagreement:
//   - numeric strings compared with GREATER_THAN/LESS_THAN…: the reference
//     engine coerces "999" to 999; the SDK compares strings ("999" >= "1000").
//     Numeric strings are only generated where both orders agree;
//   - REGEX: the reference matches at the start of the value, the SDK
//     searches anywhere: emails here have at most one "@", where both agree;
//   - NOT_EQUAL/EQUAL with a condition value that does not convert to the
//     trait's type (gdpr_opt_out as a number): the reference is false, the
//     SDK compares with NaN (NOT_EQUAL true);
//   - MODULO on strings with a numeric prefix ("12abc"): the SDK parseFloats;
//   - semver strings that node-semver accepts loosely ("v3.2.0", "=3.2.0").

const pick = (rnd, xs) => xs[Math.floor(rnd() * xs.length)];
const chance = (rnd, p) => rnd() < p;
const int = (rnd, lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

// Identifiers with identity overrides or named in segments.
const namedIdentifiers = ['qa@acme.example', 'partner-bulk-importer', 'alice@example.com', 'bob@example.com'];

const emailDomains = [
  'acme.example', 'acme.example', 'acme.example', // internal_staff
  'ACME.example', 'acme.example.org', 'acme-example.com', 'example.com', 'gmail.com', 'mail.acme.example',
];
const localParts = ['x', 'ana', 'bo.li', 'qa', 'ops', 'dev+test', 'sam+test', 'zoë', 'first.last', 'a_b-c'];

function email(rnd) {
  const r = rnd();
  if (r < 0.04) return '@acme.example'; // nothing before the @: no match
  if (r < 0.06) return 'no-at-sign.acme.example';
  if (r < 0.08) return 'x@acme.example '; // trailing space: $ fails
  return `${pick(rnd, localParts)}${int(rnd, 0, 99)}@${pick(rnd, emailDomains)}`;
}

// lifetime_value vs GREATER_THAN_INCLUSIVE "1000": numbers of every kind;
// numeric strings only where string and number order agree.
function lifetimeValue(rnd) {
  return pick(rnd, [
    () => int(rnd, 0, 3000),
    () => pick(rnd, [999, 1000, 1001, 999.99, 1000.0, 1000.01, -5, 0]),
    () => Math.round(rnd() * 500000) / 100,
    () => String(int(rnd, 1000, 99999)), // >= 1000 both ways
    () => pick(rnd, ['1000', '1000.5', '25000', '0', '1', '10', '100', '0.5', '-7', '-1500']),
    () => pick(rnd, ['lots', 'n/a', '']),
  ])();
}

const semvers = [
  '1.0.0', '1.9.9', '1.9.9-rc.1', '1.10.0', '2.0.0-alpha', '2.0.0-rc.2', '2.0.0', '2.0.1', '2.13.4',
  '3.0.0', '3.1.9', '3.2.0-beta.1', '3.2.0-rc.1', '3.2.0', '3.2.0+build.7', '3.2.1', '3.10.0', '4.0.0-alpha.1', '10.0.0',
  // not semver: every semver condition is false
  '3.2', 'latest', '',
];

function appVersion(rnd) {
  if (chance(rnd, 0.04)) return int(rnd, 1, 5); // a number: no semver comparison applies
  return pick(rnd, semvers);
}

const countries = ['DE', 'FR', 'IT', 'ES', 'NL', 'BE', 'AT', 'IE', 'PT', 'PL', 'US', 'GB', 'CH', 'SE', 'JP', 'de', 'fr', 'D E', ''];
const userAgents = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)',
  'Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2)',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)',
  'okhttp/4.12.0',
  'msie-lowercase-is-not-MSIE'.toLowerCase(),
];

// A trait with probability p.
function maybe(rnd, traits, p, key, gen) {
  if (chance(rnd, p)) traits[key] = gen();
}

export function generateIdentities(rnd, n, runId) {
  const out = [];
  for (let i = 0; i < n; i++) {
    let identifier;
    const r = rnd();
    if (r < 0.03) identifier = pick(rnd, namedIdentifiers);
    else if (r < 0.06) identifier = `${runId} user ${i} ünïcødé`;
    else identifier = `${runId}-u${i}`;

    const t = {};
    maybe(rnd, t, 0.7, 'email', () => email(rnd));
    maybe(rnd, t, 0.6, 'plan', () => pick(rnd, ['free', 'pro', 'pro', 'enterprise', 'enterprise', 'Pro', 'team', '']));
    maybe(rnd, t, 0.6, 'lifetime_value', () => lifetimeValue(rnd));
    maybe(rnd, t, 0.7, 'platform', () => pick(rnd, ['ios', 'android', 'web', 'ios', 'android', 'iOS', 'Android ']));
    maybe(rnd, t, 0.75, 'app_version', () => appVersion(rnd));
    maybe(rnd, t, 0.6, 'country', () => pick(rnd, countries));
    maybe(rnd, t, 0.6, 'gdpr_opt_out', () => pick(rnd, [true, false, false, 'true', 'false', 'True', 'no']));
    maybe(rnd, t, 0.6, 'user_id', () => pick(rnd, [
      () => int(rnd, 0, 100000), () => -int(rnd, 1, 50), () => String(int(rnd, 0, 9999)), () => int(rnd, 0, 100) + 0.5, () => 'abc',
    ])());
    maybe(rnd, t, 0.6, 'account_age_days', () => pick(rnd, [
      () => int(rnd, 0, 400), () => pick(rnd, [29, 30, 31, 29.9, 0, -1]), () => String(int(rnd, 10, 99)),
    ])());
    maybe(rnd, t, 0.5, 'signup_source', () => pick(rnd, ['organic', 'ads', 'referral', 'partner', '']));
    maybe(rnd, t, 0.6, 'weekly_sessions', () => pick(rnd, [
      () => int(rnd, 0, 60), () => pick(rnd, [20, 21, 20.5, 19.99]), () => String(int(rnd, 10, 99)),
    ])());
    maybe(rnd, t, 0.6, 'open_tickets', () => pick(rnd, [() => int(rnd, 0, 6), () => pick(rnd, [2, 2.5, 3, 1.99]), () => String(int(rnd, 0, 9))])());
    maybe(rnd, t, 0.15, 'account_status', () => pick(rnd, ['active', 'suspended', 'closed', 'Suspended']));
    maybe(rnd, t, 0.4, 'beta_tester', () => pick(rnd, [true, false, true, 'true', 'false', 'True', 'yes']));
    maybe(rnd, t, 0.5, 'user_agent', () => pick(rnd, userAgents));
    out.push({ identifier, traits: t });
  }
  return out;
}
