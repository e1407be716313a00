/**
 * The access line assembled from pino's own pieces is the line pino writes for the same fields (the
 * time aside), through the same streamWrite hook; loggers it cannot reproduce are refused.
 */
import test from 'ava';
import { pino, type Logger } from 'pino';
import { accessLineWriter, type AccessFields } from '../../src/adapters/http/access-line.js';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferedStdout, createLogger } from '../../src/app/logger.js';

const TIME = /"time":"[^"]*"/;

function capture(make: (write: (line: string) => void) => Logger) {
  const lines: string[] = [];
  return { logger: make((line) => void lines.push(line)), lines };
}

const cases: AccessFields[] = [
  { reqId: 'req-1', method: 'GET', path: '/repos/o/r?token=[redacted]', status: 200, outcome: 'ONLINE_HIT', ms: 1.23, bytes: 4567 },
  { reqId: 'req-2', method: 'GET', path: '/repos/o/"quoted"\\path\u0001', status: 502, outcome: 'API_CONNECTION_ERROR_MISS', ms: 0, cause: 'ECONNRESET: socket hang up ← "x"' },
  { reqId: 'req-3', method: 'HEAD', path: '/', status: 200, outcome: 'API_ERROR_HIT', ms: 12, bytes: NaN, staleAgeSeconds: 42 },
];

test('the same line as pino writes, level by level, hook applied', (t) => {
  const viaPino = capture((write) => createLogger('trace', { write }).child({}, { level: 'trace', redact: [] }));
  const direct = capture((write) => createLogger('trace', { write }).child({}, { level: 'trace', redact: [] }));
  const writer = accessLineWriter(direct.logger);
  if (writer === undefined) {
    t.fail('a createLogger logger is one the writer can reproduce');
    return;
  }
  for (const fields of cases) {
    for (const level of ['debug', 'info', 'warn'] as const) {
      viaPino.logger[level]({ ...fields }, 'request');
      writer(level, fields, 'request');
    }
  }
  t.is(direct.lines.length, viaPino.lines.length);
  direct.lines.forEach((line, i) => t.is(line.replace(TIME, ''), (viaPino.lines[i] ?? '').replace(TIME, '')));
  t.regex(direct.lines[0] ?? '', /^\{"level":20,"time":"[^"]+","service":"github-mirror","reqId":"req-1",/);
});

test('the pattern pass still runs on the line', (t) => {
  const out = capture((write) => createLogger('info', { write }));
  const writer = accessLineWriter(out.logger);
  writer?.('info', { reqId: 'r', method: 'GET', path: '/repos/ghp_abcdefghijklmnopqrstuvwxyz012345/x', status: 200, outcome: 'ONLINE_MISS', ms: 1 }, 'request');
  t.is(out.lines.length, 1);
  t.false(out.lines[0]?.includes('ghp_abcdefghijklmnopqrstuvwxyz012345'));
});

test('the pattern pass covers the path, the cause and the bindings, and leaves the mirror’s own fields and the hashed token as they are', (t) => {
  const out = capture((write) => createLogger('info', { write }).child({ upstream: 'https://x:hunter2@ghe.example' }));
  const writer = accessLineWriter(out.logger);
  writer?.(
    'warn',
    {
      reqId: 'req-9',
      method: 'GET',
      path: '/user?access_token=gho_abcdefghijklmnopqrstuvwxyz0123',
      status: 502,
      outcome: 'API_CONNECTION_ERROR_MISS',
      ms: 2,
      cause: 'connect failed for token abcdefghijklmnopqrstuvwxyz0123',
      hashed_token: 'q0tN0Qn7eC9m5Jm6q4m6n2n0u9o7dA0o3Qm1bVb0Xx8=',
    },
    'request',
  );
  const line = out.lines[0] ?? '';
  for (const secret of ['gho_abcdefghijklmnopqrstuvwxyz0123', 'abcdefghijklmnopqrstuvwxyz0123', 'hunter2']) t.false(line.includes(secret), secret);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  t.like(parsed, { reqId: 'req-9', method: 'GET', status: 502, outcome: 'API_CONNECTION_ERROR_MISS', hashed_token: 'q0tN0Qn7eC9m5Jm6q4m6n2n0u9o7dA0o3Qm1bVb0Xx8=', msg: 'request' });
});

test('on the buffered stdout the line is made when written out: the same bytes, the time of the answer, in order with the other lines', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'ghm-access-')), 'out.log');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const stream = new BufferedStdout(fd);
  const logger = createLogger('info', stream);
  const access = logger.child({}, { level: 'trace', redact: [] });
  const writer = accessLineWriter(access);
  const fields: AccessFields = { reqId: 'req-5', method: 'GET', path: '/repos/o/r?token=abcdefghijklmnopqrstuvwxyz0123', status: 200, outcome: 'ONLINE_HIT', ms: 1.5, bytes: 10 };
  logger.info('first');
  const before = Date.now();
  writer?.('info', fields, 'request');
  const after = Date.now();
  logger.warn('third');
  t.is(readFileSync(file, 'utf8'), '', 'nothing written before the flush');
  await new Promise((resolve) => setTimeout(resolve, 20));
  stream.flushSync();
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.deepEqual(lines.map((line) => line['msg']), ['first', 'request', 'third']);
  const time = Date.parse(String(lines[1]?.['time']));
  t.true(time >= before && time <= after, 'the time of the call, not of the flush (20 ms later)');
  // the same bytes pino writes for these fields (time aside)
  const viaPino = capture((write) => createLogger('info', { write }).child({}, { level: 'trace', redact: [] }));
  viaPino.logger.info({ ...fields }, 'request');
  const written = readFileSync(file, 'utf8').trim().split('\n')[1] ?? '';
  t.is(written.replace(TIME, ''), (viaPino.lines[0] ?? '').replace(TIME, '').trimEnd());
  t.false(written.includes('abcdefghijklmnopqrstuvwxyz0123'));
});

test('a deferred line that cannot be made is left out; the lines around it are written', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'ghm-access-')), 'out.log');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const stream = new BufferedStdout(fd);
  stream.write('{"n":1}\n');
  stream.writeLater(() => {
    throw new Error('broken');
  }, 10);
  stream.writeLater(() => '{"n":3}\n', 10);
  t.notThrows(() => stream.flushSync());
  t.is(readFileSync(file, 'utf8'), '{"n":1}\n{"n":3}\n');
});

test('loggers whose lines it cannot reproduce are refused', (t) => {
  const write = () => undefined;
  t.is(accessLineWriter(pino({ mixin: () => ({ a: 1 }) }, { write })), undefined);
  t.is(accessLineWriter(pino({ formatters: { log: (o: Record<string, unknown>) => o } }, { write })), undefined);
  t.is(accessLineWriter(pino({ nestedKey: 'payload' }, { write })), undefined);
  t.not(accessLineWriter(pino({}, { write })), undefined);
});
