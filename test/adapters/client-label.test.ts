/**
 * The `client` label: the first User-Agent product, bounded to 50 names plus `other` however many
 * User-Agents come (fast-check), fed through the metrics adapter as the events carry them.
 */
import test from 'ava';
import fc from 'fast-check';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.adapter.js';
import { ClientLabels, MAX_CLIENT_NAME, clientName } from '../../src/adapters/metrics/client-label.js';
import type { DomainEvent } from '../../src/domain/events/events.js';
import { parseMetrics, select, type Sample } from '../support/prometheus-harness.js';

test('clientName: the first product token, without version or comment', (t) => {
  t.is(clientName('octokit-rest.js/20.0.2 octokit-core.js/5.0.1 Node.js/20'), 'octokit-rest.js');
  t.is(clientName('PyGithub/Python'), 'PyGithub');
  t.is(clientName('GitHub CLI 2.40.1'), 'GitHub');
  t.is(clientName('Renovate/37.100.0 (https://github.com/renovatebot/renovate)'), 'Renovate');
  t.is(clientName('curl/8.5.0'), 'curl');
  t.is(clientName('  gh'), 'gh');
  t.is(clientName(undefined), 'none');
  t.is(clientName(''), 'none');
  t.is(clientName('   '), 'none');
  t.is(clientName('(compatible; bot)'), 'other');
  t.is(clientName('token ghp_abcdefabcdef/1'), 'token', 'a token after the first word never reaches the label');
  t.is(clientName(`${'z'.repeat(200)}/1`), 'z'.repeat(MAX_CLIENT_NAME));
  t.is(clientName('evil"name{x}/1'), 'evil');
  t.is(clientName('ghp_16C7e42F292c6912E7710c838347Ae178B4a'), 'other', 'a token pasted as the User-Agent');
  t.is(clientName('github_pat_11ABCDEFG0123456789_abc'), 'other');
  t.is(clientName('ghs_abc'), 'other');
  t.is(clientName('0123456789abcdef0123456789abcdef01234567'), 'other');
  t.is(clientName('Xk9q2LmP4vB7nR1tZ8wY3'), 'other');
  t.is(clientName('Go-http-client/2.0'), 'Go-http-client');
});

test('a name becomes a label after admitAfter sightings; labels never move; past maxLabels everything new is other', (t) => {
  const labels = new ClientLabels({ maxLabels: 3, admitAfter: 3 });
  t.is(labels.labelFor(undefined), 'none', 'no User-Agent: a label from the start');
  t.is(labels.labelFor('a/1'), 'other');
  t.is(labels.labelFor('a/2'), 'other');
  t.is(labels.labelFor('a/3'), 'a');
  t.is(labels.labelFor('a/4'), 'a');
  for (let i = 0; i < 3; i++) labels.labelFor('b');
  t.deepEqual(labels.admitted(), ['none', 'a', 'b']);
  for (let i = 0; i < 10; i++) t.is(labels.labelFor('c'), 'other');
  t.is(labels.labelFor('a'), 'a');
  t.is(labels.labelFor('b/9'), 'b');
});

test('one-off User-Agents never take a slot: the candidates table forgets the oldest', (t) => {
  const labels = new ClientLabels({ maxLabels: 50, admitAfter: 2, maxCandidates: 8 });
  for (let i = 0; i < 10_000; i++) t.is(labels.labelFor(`random${i}/1`), 'other');
  t.deepEqual(labels.admitted(), ['none']);
  labels.labelFor('octokit');
  t.is(labels.labelFor('octokit'), 'octokit');
});

const arbitraryUserAgent = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9._-]{0,40}$/), fc.string({ maxLength: 20 })).map(([name, rest]) => `${name}/${rest}`),
  fc.constantFrom('octokit-rest.js/20.0.2', 'PyGithub/Python', 'gh/2.40', 'Renovate/37', 'curl/8.5.0', 'Go-http-client/2.0'),
  fc.constant(undefined),
);

test('fuzzed User-Agents: github_mirror_upstream_requests_total and quota_saved_total keep at most 51 client values', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(arbitraryUserAgent, { minLength: 1, maxLength: 3000 }), fc.integer({ min: 1, max: 4 }), async (userAgents, admitAfter) => {
      const bus = new EventEmitter2Bus((error) => {
        throw error;
      });
      const metrics = new PrometheusMetrics(bus, { clientLabels: { admitAfter } });
      const emit = (event: Record<string, unknown>) => bus.emit(event as unknown as DomainEvent);
      try {
        userAgents.forEach((userAgent, i) => {
          emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 1, userAgent });
          emit({ name: 'resource.resolved', outcome: 'FRESH_HIT', status: 200, method: 'GET', collapsed: false, quotaSaved: i % 2 === 0 ? 'fresh' : 'coalesced', userAgent });
        });
        const samples: Sample[] = parseMetrics((await metrics.render()).body);
        for (const name of ['github_mirror_upstream_requests_total', 'github_mirror_quota_saved_total']) {
          const values = new Set(select(samples, name).map((s) => s.labels['client']));
          if (values.size > 51) return false;
          for (const value of values) if (value === undefined || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/.test(value)) return false;
        }
        return true;
      } finally {
        metrics.close();
      }
    }),
    { numRuns: 60 },
  );
  // and a load designed to fill them: 500 distinct names, each seen often enough to be admitted
  const bus = new EventEmitter2Bus((error) => {
    throw error;
  });
  const metrics = new PrometheusMetrics(bus);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 500; i++) bus.emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 1, userAgent: `bot${i}/1` });
  }
  bus.emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 1 });
  const values = new Set(select(parseMetrics((await metrics.render()).body), 'github_mirror_upstream_requests_total').map((s) => s.labels['client']));
  t.is(values.size, 51, '49 names, none and other');
  t.true(values.has('other'));
  t.true(values.has('none'));
  t.true(values.has('bot0') && values.has('bot48') && !values.has('bot49'), 'the first names to be seen often enough keep their slot');
  metrics.close();
});
