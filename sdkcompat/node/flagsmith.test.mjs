// flagsmith-nodejs (remote evaluation) against gitflags: environment flags,
// identity targeting, trait persistence and transient traits/identities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flagsmith } from 'flagsmith-nodejs';

import { apiUrl, clientKey, runId, productionFlags, flagNames, flagStates, quietLogger, errorChain } from './common.mjs';

function client(key = clientKey) {
  return new Flagsmith({ environmentKey: key, apiUrl, requestTimeoutSeconds: 10, retries: 0, logger: quietLogger });
}

// identityFlags calls getIdentityFlags; on failure it repeats the request
// without the SDK to show the server's answer (the SDK keeps only the status).
async function identityFlags(fs, identifier, traits, transient) {
  try {
    return await fs.getIdentityFlags(identifier, traits, transient);
  } catch (e) {
    let answer = '';
    try {
      const body = { identifier, traits: Object.entries(traits || {}).map(([k, v]) => ({ trait_key: k, trait_value: v?.value ?? v, ...(v?.transient ? { transient: true } : {}) })) };
      if (transient) body.transient = true;
      const res = await fetch(`${apiUrl}identities/`, { method: 'POST', headers: { 'X-Environment-Key': clientKey, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      answer = `; POST /api/v1/identities/ ${JSON.stringify(body)} answers ${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch {}
    throw new Error(`getIdentityFlags(${JSON.stringify(identifier)}, ${JSON.stringify(traits)}, ${transient}): ${errorChain(e)}${answer}`);
  }
}

function value(flags, name) {
  return flags.getFeatureValue(name);
}

test('getEnvironmentFlags: every production flag of the template, enabled and value', async () => {
  const flags = await client().getEnvironmentFlags();
  assert.deepEqual(Object.keys(flags.flags).sort(), flagNames, 'flag names');
  const got = flagStates(flags);
  for (const name of flagNames) {
    assert.deepEqual(
      { enabled: got[name].enabled, value: got[name].value },
      productionFlags[name],
      `flag ${name}`,
    );
    assert.equal(got[name].isDefault, false, `${name} came from the API, not a default handler`);
  }
  assert.equal(flags.isFeatureEnabled('new_checkout'), true);
  assert.equal(flags.getFeatureValue('api_rate_limit'), 600);
  assert.equal(flags.getFeatureValue('max_cart_items'), 50);
  assert.equal(flags.getFeatureValue('new_checkout'), 'classic');
  assert.equal(flags.getFlag('api_rate_limit').featureId, 1007, 'feature id from features/api_rate_limit.json');
});

test('an unknown environment key is rejected (SDK throws without a default flag handler)', async () => {
  await assert.rejects(client('no_such_key_123456').getEnvironmentFlags(), /getEnvironmentFlags failed/);
});

test('getIdentityFlags (transient): segment and identity overrides', async (t) => {
  const fs = client();
  const cases = [
    {
      what: 'internal_staff (email @acme.example)',
      identifier: `${runId}-staff`,
      traits: { email: 'x@acme.example' },
      want: { api_rate_limit: 100000, ai_assistant: true },
    },
    {
      what: 'identity override qa@acme.example',
      identifier: 'qa@acme.example',
      traits: undefined,
      want: { new_checkout: 'one-page' },
    },
    {
      what: 'identity override partner-bulk-importer',
      identifier: 'partner-bulk-importer',
      traits: undefined,
      want: { api_rate_limit: 20000 },
    },
    {
      what: 'identity override alice@example.com (ai_assistant) and beta_users by identifier',
      identifier: 'alice@example.com',
      traits: undefined,
      want: { ai_assistant: true, beta_features_banner: true, new_checkout: 'express' },
    },
    {
      what: 'beta_users by trait',
      identifier: `${runId}-beta`,
      traits: { beta_tester: true },
      want: { beta_features_banner: true, new_checkout: 'express', api_rate_limit: 600 },
    },
    {
      what: 'premium_customers',
      identifier: `${runId}-premium`,
      traits: { plan: 'enterprise', lifetime_value: 2500 },
      want: { max_cart_items: 200 },
    },
    {
      what: 'not premium (lifetime_value below 1000)',
      identifier: `${runId}-cheap`,
      traits: { plan: 'pro', lifetime_value: 999.5 },
      want: { max_cart_items: 50 },
    },
    {
      what: 'eu_customers',
      identifier: `${runId}-eu`,
      traits: { country: 'DE', gdpr_opt_out: false },
      want: { free_shipping_threshold: '39.00', payment_providers: '["card","paypal","sepa","klarna"]' },
    },
    {
      what: 'eu_customers needs gdpr_opt_out sent and not true',
      identifier: `${runId}-eu-optout`,
      traits: { country: 'FR', gdpr_opt_out: true },
      want: { free_shipping_threshold: '49.99' },
    },
    {
      what: 'power_users',
      identifier: `${runId}-power`,
      traits: { weekly_sessions: 35, open_tickets: 1 },
      want: { api_rate_limit: 2000 },
    },
    {
      what: 'power_users excludes suspended accounts (NONE rule)',
      identifier: `${runId}-suspended`,
      traits: { weekly_sessions: 35, open_tickets: 1, account_status: 'suspended' },
      want: { api_rate_limit: 600 },
    },
    {
      what: 'internal_staff beats power_users (priority 1 < 2)',
      identifier: `${runId}-staff-power`,
      traits: { email: 'ops@acme.example', weekly_sessions: 50, open_tickets: 0 },
      want: { api_rate_limit: 100000 },
    },
    {
      what: 'mobile_app_users (ios, app_version >= 3.2.0)',
      identifier: `${runId}-mobile`,
      traits: { platform: 'ios', app_version: '3.4.1' },
      want: { dark_mode: true },
    },
    {
      what: 'legacy_clients beats mobile_app_users (MSIE)',
      identifier: `${runId}-legacy`,
      traits: { platform: 'android', app_version: '3.4.1', user_agent: 'Mozilla/4.0 (compatible; MSIE 6.0)' },
      want: { dark_mode: false },
    },
    {
      what: 'mobile prerelease 3.2.0-rc.1 is below 3.2.0',
      identifier: `${runId}-mobile-rc`,
      traits: { platform: 'android', app_version: '3.2.0-rc.1' },
      want: { dark_mode: false },
    },
  ];
  for (const c of cases) {
    await t.test(c.what, async () => {
      // Transient: targeting only, nothing stored (storage is tested below).
      const flags = await identityFlags(fs, c.identifier, c.traits, true);
      for (const [name, want] of Object.entries(c.want)) {
        if (typeof want === 'boolean') {
          assert.equal(flags.isFeatureEnabled(name), want, `${name} enabled`);
        } else {
          assert.equal(flags.isFeatureEnabled(name), true, `${name} enabled`);
          assert.equal(value(flags, name), want, `${name} value`);
        }
      }
    });
  }
});

test('traits persist: sent once, they still target later calls without traits', async () => {
  const fs = client();
  const id = `${runId}-persist`;
  let flags = await identityFlags(fs, id, { email: 'persist@acme.example', plan: 'pro' });
  assert.equal(value(flags, 'api_rate_limit'), 100000, 'with the email trait sent');
  flags = await identityFlags(fs, id);
  assert.equal(value(flags, 'api_rate_limit'), 100000, 'without traits: the stored email trait still applies');
  // Stored and sent traits merge: plan is stored, lifetime_value is added.
  flags = await identityFlags(fs, id, { lifetime_value: 5000 });
  assert.equal(value(flags, 'max_cart_items'), 200, 'stored plan=pro + sent lifetime_value=5000 -> premium_customers');
  assert.equal(value(flags, 'api_rate_limit'), 100000, 'email still stored');
  // A null trait value deletes the trait.
  flags = await identityFlags(fs, id, { email: null });
  assert.equal(value(flags, 'api_rate_limit'), 600, 'email deleted with a null value');
  flags = await identityFlags(fs, id);
  assert.equal(value(flags, 'api_rate_limit'), 600, 'email stays deleted');
  assert.equal(value(flags, 'max_cart_items'), 200, 'plan and lifetime_value still stored');
});

test('transient identity: traits are used for this evaluation only', async () => {
  const fs = client();
  const id = `${runId}-transient-identity`;
  let flags = await identityFlags(fs, id, { email: 'temp@acme.example' }, true);
  assert.equal(value(flags, 'api_rate_limit'), 100000, 'targeted by the transient traits');
  flags = await identityFlags(fs, id);
  assert.equal(value(flags, 'api_rate_limit'), 600, 'nothing stored by the transient call');
});

test('transient trait: only the trait marked transient is not stored', async () => {
  const fs = client();
  const id = `${runId}-transient-trait`;
  let flags = await identityFlags(fs, id, {
    email: { value: 'temp@acme.example', transient: true },
    plan: 'enterprise',
  });
  assert.equal(value(flags, 'api_rate_limit'), 100000, 'targeted by the transient email');
  flags = await identityFlags(fs, id, { lifetime_value: 1000 });
  assert.equal(value(flags, 'api_rate_limit'), 600, 'the transient email was not stored');
  assert.equal(value(flags, 'max_cart_items'), 200, 'the non-transient plan was stored (premium with lifetime_value=1000)');
});
