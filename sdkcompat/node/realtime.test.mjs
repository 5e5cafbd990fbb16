// Realtime: the Flagsmith JavaScript client (npm "flagsmith", realtime on)
// and the OpenFeature OFREP web provider (@openfeature/ofrep-web-provider)
// see a commit made in the served repository without polling, through
// gitflags' server-sent event streams.
//
// Both are browser SDKs. In Node they need what a browser has: EventSource
// (the "eventsource" package, which reads the stream with Node's fetch) and,
// for the Flagsmith client, a window (it only starts realtime when window
// is defined). Each test changes its own environment (staging, development):
// the other test files read production, which these commits leave alone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventSource } from 'eventsource';

import { baseUrl, apiUrl } from './common.mjs';

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through "go test ./sdkcompat/"`);
  return v;
}
const repo = required('GITFLAGS_REPO');
const stagingKey = required('GITFLAGS_STAGING_CLIENT_KEY');
const devKey = required('GITFLAGS_DEV_CLIENT_KEY');

globalThis.EventSource = EventSource;
globalThis.window ??= globalThis;

// Every request the SDKs make, through fetch.
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request;
  const url = isRequest ? input.url : String(input);
  const method = init?.method ?? (isRequest ? input.method : 'GET');
  requests.push({ method, url });
  return realFetch(input, init);
};

// The SDKs are imported after the globals they read at import time.
const { createFlagsmithInstance } = await import('flagsmith');
const { OpenFeature, ProviderEvents } = await import('@openfeature/web-sdk');
const { OFREPWebProvider } = await import('@openfeature/ofrep-web-provider');

// commit sets a feature's value in an environment with git in the served
// repository; gitflags serves every new commit of its branch.
function commit(env, feature, value) {
  const rel = join('environments', env, 'features', `${feature}.json`);
  const path = join(repo, rel);
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  doc.value = value;
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
  const git = (...args) => execFileSync('git', ['-c', 'user.name=sdkcompat', '-c', 'user.email=sdkcompat@gitflags.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: repo });
  git('add', rel);
  git('commit', '-q', '-m', `${env}: ${feature} = ${value} (sdkcompat realtime)`);
}

// waitFor resolves when cond() holds after one of the SDK's change callbacks,
// or rejects after a guard of 20 s.
function waitFor(what, subscribe, cond) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not within 20 s`)), 20000);
    const check = () => {
      if (cond()) {
        clearTimeout(timer);
        resolve();
      }
    };
    subscribe(check);
    check();
  });
}

const flagsmithCleanups = [];
after(async () => {
  for (const f of flagsmithCleanups) f();
  await OpenFeature.close();
});

test('flagsmith JS client, realtime: a commit reaches it through /sse/environments/{key}/stream without polling', async () => {
  const flagsmith = createFlagsmithInstance();
  const listeners = [];
  const ready = flagsmith.init({
    environmentID: stagingKey,
    api: apiUrl,
    realtime: true,
    eventSourceUrl: `${baseUrl}/`,
    fetch: globalThis.fetch,
    onChange: () => listeners.forEach((l) => l()),
  });
  // init opens the event source at once, before its first fetch.
  const es = flagsmith.eventSource;
  assert.ok(es, 'the client opened no event source (realtime needs window and EventSource)');
  // The client has no close: end its stream and its analytics timer (set
  // even with analytics off when it has storage).
  flagsmithCleanups.push(() => { es.close(); clearInterval(flagsmith.analyticsInterval); });
  const events = [];
  es.addEventListener('environment_updated', (e) => events.push(JSON.parse(e.data)));
  await ready;
  assert.equal(flagsmith.getValue('search_provider'), 'opensearch');
  // The server sends the current updated_at on connect.
  await waitFor('the event sent on connect', (l) => es.addEventListener('environment_updated', l), () => events.length > 0);
  assert.equal(typeof events[0].updated_at, 'number');
  const flagFetches = () => requests.filter((r) => r.url.startsWith(`${apiUrl}flags/`)).length;
  const before = flagFetches();

  commit('staging', 'search_provider', 'solr');
  await waitFor('the new value', (l) => listeners.push(l), () => flagsmith.getValue('search_provider') === 'solr');
  assert.equal(flagFetches(), before + 1, `one refetch, triggered by the event: ${JSON.stringify(requests)}`);
  assert.ok(events.length >= 2 && events.at(-1).updated_at > events[0].updated_at, `events: ${JSON.stringify(events)}`);
});

test('OFREP web provider: eventStreams, a refetchEvaluation event, a re-fetch with flagConfigEtag, no polling', async () => {
  const provider = new OFREPWebProvider({
    baseUrl,
    headers: [['Authorization', `Bearer ${devKey}`]],
    cacheMode: 'disabled', // no localStorage in Node
    pollInterval: 0,
  });
  await OpenFeature.setContext('realtime', { targetingKey: 'realtime-user' });
  await OpenFeature.setProviderAndWait('realtime', provider);
  const client = OpenFeature.getClient('realtime');
  assert.equal(client.getStringValue('search_provider', '<default>'), 'opensearch');
  const bulk = () => requests.filter((r) => r.method === 'POST' && r.url.startsWith(`${baseUrl}/ofrep/v1/evaluate/flags`));
  assert.equal(bulk().length, 1);
  const streams = () => requests.filter((r) => r.url.startsWith(`${baseUrl}/ofrep/v1/event-stream`));
  await waitFor('the provider connects to the event stream', (l) => setTimeout(l, 50), () => streams().length > 0);
  const streamUrl = new URL(streams()[0].url);
  assert.equal(streamUrl.searchParams.get('key'), devKey);

  const changed = [];
  client.addHandler(ProviderEvents.ConfigurationChanged, (d) => changed.push(d));
  // The commit may land before the stream is connected: the stream's since
  // parameter then makes it send the event at once.
  commit('development', 'search_provider', 'meilisearch');
  await waitFor('the new value', (l) => client.addHandler(ProviderEvents.ConfigurationChanged, l),
    () => client.getStringValue('search_provider', '<default>') === 'meilisearch');
  const refetches = bulk().slice(1);
  assert.equal(refetches.length, 1, `one re-fetch: ${JSON.stringify(bulk())}`);
  const q = new URL(refetches[0].url).searchParams;
  assert.match(q.get('flagConfigEtag') ?? '', /^"[0-9a-f]{32}"$/, 'the re-fetch carries the event\'s etag');
  assert.ok(q.get('flagConfigLastModified'), 'the re-fetch carries the event\'s lastModified');
  assert.ok(changed.some((d) => d.flagsChanged?.includes('search_provider')), `ConfigurationChanged: ${JSON.stringify(changed)}`);
});
