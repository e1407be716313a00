/**
 * A fake api.github.com over a real HTTP server (node:http) on 127.0.0.1: resources with ETag /
 * Last-Modified validators, conditional requests, paginated lists with Link headers, per-credential
 * quota accounting as GitHub does it, gzip, write echoes and injectable faults.
 *
 * ETags follow GitHub's formula (test/support/github-etag.ts): they hash the request's Accept,
 * Authorization and Cookie with the body, so one body has one ETag per token. JSON is pretty-printed
 * for curl / Wget / Safari / Firefox user agents after the ETag was computed, as GitHub does. A
 * resource can be hidden from credentials (a private repository: 404) and can render per credential
 * (a repository's `permissions`).
 *
 * It is the upstream of every test and of `npm run bench`, so the answer path is cheap: bodies and
 * gzip are computed once per resource (or per credential variant), ETags once per distinct set of
 * hashed request headers.
 */
import { randomBytes } from 'node:crypto';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { readOctokitFixtures } from './fake-github-fixtures.js';
import { ETAG_VARY_HEADERS, githubEtag } from './github-etag.js';

export interface FakeGitHubOptions {
  /** Delay before every answer, in ms (default 0). */
  latencyMs?: number;
  /** Units per authenticated credential per hour (default 5000). */
  quota?: number;
  /** Units for anonymous requests per hour (default 60). */
  anonymousQuota?: number;
  /**
   * Gzip bodies of 1024 bytes or more when the request's Accept-Encoding includes gzip
   * (default true).
   */
  gzip?: boolean;
  /**
   * Keep every request in `calls` (default true). A long benchmark may turn it off; quota
   * accounting still works.
   */
  recordCalls?: boolean;
}

export interface RecordedCall {
  method: string;
  /** Raw req.url, byte for byte. */
  target: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Status answered; 0 while unanswered (and for a hang). */
  status: number;
  countedAgainstQuota: boolean;
  /** The Authorization header value; undefined = anonymous. */
  credential: string | undefined;
  /** performance.now() when the request's head arrived. */
  receivedAt: number;
}

export interface ResourceSpec {
  /** JSON-serialised unless a string or a Buffer. */
  body: unknown;
  /** Default 200. */
  status?: number;
  /**
   * Default 'etag': GitHub's ETag formula, weak (`W/"…"`) for a JSON content type, strong otherwise.
   * 'strong' / 'weak' force the form; 'both' = the 'etag' ETag and a Last-Modified.
   */
  validator?: 'etag' | 'strong' | 'weak' | 'last-modified' | 'both' | 'none';
  /** Extra response headers; they override the defaults (an `etag` here is the validator used, fixed). */
  headers?: Record<string, string>;
  /** Default application/json; charset=utf-8. */
  contentType?: string;
  /**
   * Fields that differ per credential, merged (shallowly) over an object `body` for that credential,
   * e.g. `{ 'token a': { permissions: { admin: false, push: true, pull: true } } }`. Keys are
   * Authorization values or bare tokens ("token X" and "Bearer X" are the token X).
   */
  perCredential?: Record<string, Record<string, unknown>>;
}

/**
 * Who may read the resources a rule matches; the others get 404 as for a private repository.
 * Entries are Authorization values or bare tokens; anonymous requests never match an entry.
 */
export interface AccessRule {
  /** Only these credentials may read (anonymous may not). */
  allow?: readonly string[];
  /** These credentials may not read. */
  deny?: readonly string[];
}

export type Fault =
  | { kind: 'status'; status: number; body?: unknown }
  | { kind: 'hang' }
  | { kind: 'reset-mid-body' }
  | { kind: 'rate-limit' }
  | { kind: 'secondary-rate-limit'; retryAfterSeconds: number }
  | { kind: 'latency'; ms: number };

/** The faults that replace the answer (latency only delays it). */
type AnsweringFault = Exclude<Fault, { kind: 'latency' }>;

const JSON_TYPE = 'application/json; charset=utf-8';
/** GitHub pretty-prints JSON when the User-Agent contains one of these (case-sensitive). */
const PRETTY_USER_AGENT = /curl|Wget|Safari|Firefox/;
/** Per-request ETags kept per rendered body before the memo is cleared. */
const ETAG_MEMO_MAX = 1024;
const VARY = 'Accept, Authorization, Cookie, X-GitHub-OTP';
const VARY_ENCODING = 'Accept-Encoding, Accept, X-Requested-With';
const GZIP_MIN_BYTES = 1024;
const DEFAULT_PER_PAGE = 30;
const MAX_PER_PAGE = 100;
const WINDOW_SECONDS = 3600;
const EMPTY = Buffer.alloc(0);
const DOCS = 'https://docs.github.com/rest';
const RATE_LIMIT_DOCS =
  'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit';
const SECONDARY_DOCS =
  'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits';
const NOT_FOUND = Buffer.from(JSON.stringify({ message: 'Not Found', documentation_url: DOCS }));
const REQUIRES_AUTH = Buffer.from(
  JSON.stringify({ message: 'Requires authentication', documentation_url: `${DOCS}/users/users#get-the-authenticated-user` }),
);

/** How a body's ETag is made: GitHub's formula per request, a value given by the spec, or none. */
type EtagSource = { kind: 'formula'; weak: boolean } | { kind: 'fixed'; value: string } | { kind: 'none' };

/** A body ready to send: bytes, validators and headers computed once. */
interface Rendered {
  status: number;
  body: Buffer;
  /** Lazily computed gzip of `body` (only for bodies of GZIP_MIN_BYTES or more). */
  gzipped: Buffer | undefined;
  /** Lazily: `body` pretty-printed (null when it is not JSON) and its gzip. */
  pretty: Buffer | null | undefined;
  prettyGzipped: Buffer | undefined;
  contentType: string;
  etag: EtagSource;
  /** Formula ETags already computed, keyed by the hashed request header values. */
  etags: Map<string, string>;
  lastModified: string | undefined;
  /** Epoch ms, whole seconds. */
  lastModifiedMs: number | undefined;
  /** Extra headers (lower-case names) from the spec or the fixture. */
  headers: Record<string, string>;
}

interface SingleResource {
  kind: 'single';
  spec: ResourceSpec;
  rendered: Rendered;
  /** The Last-Modified time (epoch ms) the renderings share. */
  modifiedMs: number;
  /** Renderings for the keys of `spec.perCredential`, made on first use. */
  variants: Map<string, Rendered>;
}

interface ListResource {
  kind: 'list';
  items: unknown[];
  /** JSON text of each item, computed when the item is added. */
  itemJson: string[];
  /** Rendered pages keyed by "start:end" item indices; cleared when the list changes. */
  pages: Map<string, Rendered>;
}

type Resource = SingleResource | ListResource;

interface AccessEntry {
  match: string | RegExp;
  rule: AccessRule;
}

interface FaultRule {
  match: string | RegExp;
  fault: Fault;
  remaining: number;
}

interface QuotaWindow {
  limit: number;
  used: number;
  /** Epoch seconds. */
  resetAt: number;
}

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  call: RecordedCall;
  path: string;
  query: string;
  credential: string | undefined;
}

function encodeBody(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  const text = JSON.stringify(body) as string | undefined;
  return text === undefined ? EMPTY : Buffer.from(text, 'utf8');
}

function isJsonType(contentType: string): boolean {
  return /[/+]json\b/i.test(contentType);
}

function lowerCaseKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) out[name.toLowerCase()] = value;
  }
  return out;
}

/** Whole-second epoch ms for `now`, strictly later than `previous` (by at least 1 s) when given. */
function nextLastModified(previous: number | undefined): number {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return previous === undefined ? now : Math.max(now, previous + 1000);
}

function renderSpec(spec: ResourceSpec, lastModifiedMs: number): Rendered {
  const body = encodeBody(spec.body);
  const validator = spec.validator ?? 'etag';
  const headers = lowerCaseKeys(spec.headers);
  let contentType = spec.contentType ?? JSON_TYPE;
  if (headers['content-type'] !== undefined) {
    contentType = headers['content-type'];
    delete headers['content-type'];
  }
  let etag: EtagSource = { kind: 'none' };
  let lastModified: string | undefined;
  let modifiedMs: number | undefined;
  if (validator === 'etag' || validator === 'both') etag = { kind: 'formula', weak: isJsonType(contentType) };
  if (validator === 'strong') etag = { kind: 'formula', weak: false };
  if (validator === 'weak') etag = { kind: 'formula', weak: true };
  if (validator === 'last-modified' || validator === 'both') {
    modifiedMs = lastModifiedMs;
    lastModified = new Date(lastModifiedMs).toUTCString();
  }
  // Validators given explicitly in the spec's headers win (and are the ones compared).
  if (headers.etag !== undefined) {
    etag = { kind: 'fixed', value: headers.etag };
    delete headers.etag;
  }
  if (headers['last-modified'] !== undefined) {
    lastModified = headers['last-modified'];
    const parsed = Date.parse(lastModified);
    modifiedMs = Number.isNaN(parsed) ? undefined : parsed;
    delete headers['last-modified'];
  }
  return {
    status: spec.status ?? 200,
    body,
    gzipped: undefined,
    pretty: undefined,
    prettyGzipped: undefined,
    contentType,
    etag,
    etags: new Map(),
    lastModified,
    lastModifiedMs: modifiedMs,
    headers,
  };
}

function renderPage(json: string[], start: number, end: number): Rendered {
  let text = '[';
  for (let i = start; i < end; i++) {
    if (i > start) text += ',';
    text += json[i];
  }
  text += ']';
  const body = Buffer.from(text, 'utf8');
  return {
    status: 200,
    body,
    gzipped: undefined,
    pretty: undefined,
    prettyGzipped: undefined,
    contentType: JSON_TYPE,
    etag: { kind: 'formula', weak: true },
    etags: new Map(),
    lastModified: undefined,
    lastModifiedMs: undefined,
    headers: {},
  };
}

/** The bearer of "token X" / "Bearer X", else undefined. */
function tokenOf(credential: string | undefined): string | undefined {
  if (credential === undefined) return undefined;
  const match = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(credential);
  return match?.[1];
}

function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined || !header.includes('gzip')) return false;
  if (!header.includes(';')) return true;
  return !/(?:^|,)\s*gzip\s*;\s*q\s*=\s*0(?:\.0*)?\s*(?:,|$)/i.test(header);
}

/** Whether `credential` (an Authorization value) is `entry` (an Authorization value or a bare token). */
function credentialIs(credential: string | undefined, entry: string): boolean {
  return credential !== undefined && (credential === entry || tokenOf(credential) === entry);
}

/** The key of `perCredential` that names `credential`, if any. */
function variantKeyOf(perCredential: Record<string, unknown> | undefined, credential: string | undefined): string | undefined {
  if (perCredential === undefined || credential === undefined) return undefined;
  if (Object.hasOwn(perCredential, credential)) return credential;
  const token = tokenOf(credential);
  return token !== undefined && Object.hasOwn(perCredential, token) ? token : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** The ETag `rendered` has for this request: GitHub's formula over its Accept, Authorization, Cookie. */
function etagOf(req: IncomingMessage, rendered: Rendered): string | undefined {
  const source = rendered.etag;
  if (source.kind === 'none') return undefined;
  if (source.kind === 'fixed') return source.value;
  const distinct = req.headersDistinct;
  const hashed: Record<string, string[] | undefined> = {};
  for (const name of ETAG_VARY_HEADERS) hashed[name] = distinct[name];
  const key = JSON.stringify(ETAG_VARY_HEADERS.map((name) => hashed[name] ?? null));
  let etag = rendered.etags.get(key);
  if (etag === undefined) {
    etag = githubEtag(hashed, rendered.body, { weak: source.weak });
    if (rendered.etags.size >= ETAG_MEMO_MAX) rendered.etags.clear();
    rendered.etags.set(key, etag);
  }
  return etag;
}

/** JSON `body` indented as GitHub pretty-prints it; null when it is not JSON. */
function prettyJson(body: Buffer): Buffer | null {
  try {
    return Buffer.from(JSON.stringify(JSON.parse(body.toString('utf8')) as unknown, null, 2), 'utf8');
  } catch {
    return null;
  }
}

function wantsPretty(req: IncomingMessage, contentType: string): boolean {
  const userAgent = req.headers['user-agent'];
  return userAgent !== undefined && PRETTY_USER_AGENT.test(userAgent) && isJsonType(contentType);
}

/** Weak comparison of an If-None-Match list against an ETag (RFC 9110 §13.1.2). */
function noneMatchHits(ifNoneMatch: string, etag: string | undefined): boolean {
  const target = etag?.replace(/^W\//, '');
  for (const raw of ifNoneMatch.split(',')) {
    const candidate = raw.trim();
    if (candidate === '*') return true;
    if (target !== undefined && candidate.replace(/^W\//, '') === target) return true;
  }
  return false;
}

function isNotModified(req: IncomingMessage, rendered: Rendered, etag: string | undefined): boolean {
  if (rendered.status < 200 || rendered.status > 299) return false;
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) return noneMatchHits(ifNoneMatch, etag);
  const ifModifiedSince = req.headers['if-modified-since'];
  if (ifModifiedSince === undefined || rendered.lastModifiedMs === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && rendered.lastModifiedMs <= since;
}

function queryParam(query: string, name: string): string | null {
  if (query === '' || !query.includes(name)) return null;
  return new URLSearchParams(query).get(name);
}

function perPageOf(query: string): number {
  const raw = queryParam(query, 'per_page');
  const n = raw === null ? NaN : Number.parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 1) return DEFAULT_PER_PAGE;
  return Math.min(n, MAX_PER_PAGE);
}

function pageOf(query: string): number {
  const raw = queryParam(query, 'page');
  const n = raw === null ? NaN : Number.parseInt(raw, 10);
  return !Number.isFinite(n) || n < 1 ? 1 : n;
}

/** `query` with its first `page` parameter set to `page` (appended when absent), order kept. */
function withPage(query: string, page: number): string {
  if (query === '') return `page=${page}`;
  const parts = query.split('&');
  let replaced = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === 'page' || part.startsWith('page=')) {
      parts[i] = `page=${page}`;
      replaced = true;
      break;
    }
  }
  if (!replaced) parts.push(`page=${page}`);
  return parts.join('&');
}

export class FakeGitHub {
  readonly url: string;
  readonly calls: RecordedCall[] = [];

  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly resources = new Map<string, Resource>();
  private readonly users = new Map<string, Rendered>();
  private access: AccessEntry[] = [];
  private faults: FaultRule[] = [];
  private latencyMs: number;
  private readonly quota: number;
  private readonly anonymousQuota: number;
  private readonly gzip: boolean;
  private readonly recordCalls: boolean;
  private readonly windows = new Map<string | undefined, QuotaWindow>();
  private readonly spent = new Map<string | undefined, number>();
  private spentTotal = 0;
  /** Requests being answered now, and the most seen at once, per credential. */
  private readonly inFlight = new Map<string | undefined, number>();
  private readonly peaks = new Map<string | undefined, number>();
  private readonly requestIdPrefix = randomBytes(2).toString('hex').toUpperCase();
  private requestCounter = 0;
  private closing: Promise<void> | undefined;

  private constructor(server: http.Server, port: number, options: FakeGitHubOptions) {
    this.server = server;
    this.url = `http://127.0.0.1:${port}`;
    this.latencyMs = options.latencyMs ?? 0;
    this.quota = options.quota ?? 5000;
    this.anonymousQuota = options.anonymousQuota ?? 60;
    this.gzip = options.gzip ?? true;
    this.recordCalls = options.recordCalls ?? true;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    const server = http.createServer({ keepAlive: true, noDelay: true });
    server.keepAliveTimeout = 30_000;
    server.headersTimeout = 35_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return new FakeGitHub(server, port, options);
  }

  // ---- resources -------------------------------------------------------------------------------

  setResource(path: string, spec: ResourceSpec): void {
    if (spec.perCredential !== undefined && !isPlainObject(spec.body)) {
      throw new Error(`FakeGitHub.setResource: perCredential needs an object body at ${path}`);
    }
    const previous = this.resources.get(path);
    const previousModified = previous?.kind === 'single' ? previous.rendered.lastModifiedMs : undefined;
    const modifiedMs = nextLastModified(previousModified);
    this.resources.set(path, { kind: 'single', spec, rendered: renderSpec(spec, modifiedMs), modifiedMs, variants: new Map() });
  }

  /** New body: new ETag (content-based) and a Last-Modified at least 1 s later than before. */
  updateResource(path: string, body: unknown): void {
    const resource = this.resources.get(path);
    if (resource === undefined) throw new Error(`FakeGitHub.updateResource: no resource at ${path}`);
    if (resource.kind === 'list') {
      if (!Array.isArray(body)) throw new Error(`FakeGitHub.updateResource: ${path} is a list, give an array`);
      this.setList(path, body);
      return;
    }
    if (resource.spec.perCredential !== undefined && !isPlainObject(body)) {
      throw new Error(`FakeGitHub.updateResource: perCredential needs an object body at ${path}`);
    }
    const spec: ResourceSpec = { ...resource.spec, body };
    resource.spec = spec;
    resource.modifiedMs = nextLastModified(resource.rendered.lastModifiedMs);
    resource.rendered = renderSpec(spec, resource.modifiedMs);
    resource.variants.clear();
  }

  /**
   * Sets (or, with `fields` undefined, removes) what `credential` (Authorization value or bare
   * token) sees differently in the object resource at `path`; its body and ETag change for it alone.
   */
  setPerCredential(path: string, credential: string, fields: Record<string, unknown> | undefined): void {
    const resource = this.resources.get(path);
    if (resource?.kind !== 'single') throw new Error(`FakeGitHub.setPerCredential: no single resource at ${path}`);
    if (!isPlainObject(resource.spec.body)) throw new Error(`FakeGitHub.setPerCredential: ${path} has no object body`);
    const perCredential = { ...resource.spec.perCredential };
    if (fields === undefined) delete perCredential[credential];
    else perCredential[credential] = fields;
    resource.spec = { ...resource.spec, perCredential };
    resource.variants.clear();
  }

  deleteResource(path: string): void {
    this.resources.delete(path);
  }

  setList(path: string, items: unknown[]): void {
    const copy = [...items];
    this.resources.set(path, {
      kind: 'list',
      items: copy,
      itemJson: copy.map((item) => JSON.stringify(item) ?? 'null'),
      pages: new Map(),
    });
  }

  addItem(path: string, item: unknown): void {
    const resource = this.resources.get(path);
    if (resource === undefined) {
      this.setList(path, [item]);
      return;
    }
    if (resource.kind !== 'list') throw new Error(`FakeGitHub.addItem: ${path} is not a list`);
    resource.items.push(item);
    resource.itemJson.push(JSON.stringify(item) ?? 'null');
    resource.pages.clear();
  }

  /** GET /user with "token <token>" or "Bearer <token>" answers {"login": login}. */
  setUser(token: string, login: string): void {
    this.users.set(token, renderSpec({ body: { login, type: 'User' } }, nextLastModified(undefined)));
  }

  /** Registers the successful GETs of @octokit/fixtures; returns the paths registered. */
  loadFixtures(): string[] {
    const registered: string[] = [];
    for (const fixture of readOctokitFixtures()) {
      const headers: Record<string, string> = {};
      for (const name of Object.keys(fixture.headers)) {
        headers[name] = (fixture.headers[name] as string).replaceAll('https://api.github.com', this.url);
      }
      const validator = fixture.hasEtag
        ? fixture.hasLastModified
          ? 'both'
          : 'etag'
        : fixture.hasLastModified
          ? 'last-modified'
          : 'none';
      const spec: ResourceSpec = {
        body: fixture.bodyText.replaceAll('https://api.github.com', this.url),
        validator,
        headers,
      };
      if (fixture.contentType !== undefined) spec.contentType = fixture.contentType;
      this.setResource(fixture.path, spec);
      registered.push(fixture.path);
    }
    return registered;
  }

  // ---- access ----------------------------------------------------------------------------------

  /**
   * Restricts reads and writes of the paths `match` names (string = exact path, RegExp = tested on
   * the path): a credential the rule excludes gets 404 Not Found, whatever its If-None-Match, and it
   * costs a unit like any 404. Rules add up: a credential must pass every rule that matches.
   */
  setAccess(match: string | RegExp, rule: AccessRule): void {
    this.access.push({ match, rule });
  }

  /** Removes every access rule. */
  clearAccess(): void {
    this.access = [];
  }

  /** Whether `credential` may see `path` under the access rules. */
  canAccess(path: string, credential: string | undefined): boolean {
    for (const { match, rule } of this.access) {
      let hit: boolean;
      if (typeof match === 'string') {
        hit = match === path;
      } else {
        match.lastIndex = 0;
        hit = match.test(path);
      }
      if (!hit) continue;
      if (rule.allow !== undefined && !rule.allow.some((entry) => credentialIs(credential, entry))) return false;
      if (rule.deny?.some((entry) => credentialIs(credential, entry)) === true) return false;
    }
    return true;
  }

  // ---- faults and latency ----------------------------------------------------------------------

  /** The fault applies to the next `times` matching requests (string = exact path, RegExp = target). */
  injectFault(path: string | RegExp, fault: Fault, times: number = Infinity): void {
    if (times <= 0) return;
    this.faults.push({ match: path, fault, remaining: times });
  }

  /** Removes every fault and drops the requests left hanging by one. */
  clearFaults(): void {
    this.faults = [];
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  // ---- observations ----------------------------------------------------------------------------

  quotaSpent(credential?: string): number {
    return this.spent.get(credential) ?? 0;
  }

  totalQuotaSpent(): number {
    return this.spentTotal;
  }

  callsTo(path: string): RecordedCall[] {
    return this.calls.filter((call) => {
      const q = call.target.indexOf('?');
      return (q === -1 ? call.target : call.target.slice(0, q)) === path;
    });
  }

  /** Most requests of `credential` in flight at once (arrived, not yet answered in full) since the last resetCalls(). */
  peakInFlight(credential?: string): number {
    return this.peaks.get(credential) ?? 0;
  }

  /** Forgets recorded calls, quota spent, in-flight peaks and every credential's rate-limit window. */
  resetCalls(): void {
    this.peaks.clear();
    this.calls.length = 0;
    this.spent.clear();
    this.windows.clear();
    this.spentTotal = 0;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.faults = [];
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      this.hanging.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
    });
    return this.closing;
  }

  // ---- request handling ------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const authorization = req.headers.authorization;
    const credential = authorization === undefined || authorization === '' ? undefined : authorization;
    const call: RecordedCall = {
      method: req.method ?? 'GET',
      target,
      headers: req.headers,
      body: EMPTY,
      status: 0,
      countedAgainstQuota: false,
      credential,
      receivedAt: performance.now(),
    };
    if (this.recordCalls) this.calls.push(call);
    const inFlight = (this.inFlight.get(credential) ?? 0) + 1;
    this.inFlight.set(credential, inFlight);
    if (inFlight > (this.peaks.get(credential) ?? 0)) this.peaks.set(credential, inFlight);
    res.once('close', () => this.inFlight.set(credential, (this.inFlight.get(credential) ?? 1) - 1));
    const exchange: Exchange = {
      req,
      res,
      call,
      path: q === -1 ? target : target.slice(0, q),
      query: q === -1 ? '' : target.slice(q + 1),
      credential,
    };
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      this.dispatch(exchange);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      call.body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      this.dispatch(exchange);
    });
    req.on('error', () => res.destroy());
  }

  private dispatch(exchange: Exchange): void {
    const fault = this.takeFault(exchange.path, exchange.call.target);
    let delay = this.latencyMs;
    if (fault?.kind === 'latency') delay += fault.ms;
    const effective = fault === undefined || fault.kind === 'latency' ? undefined : fault;
    if (delay <= 0) {
      this.answer(exchange, effective);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.answer(exchange, effective);
    }, delay);
    this.timers.add(timer);
  }

  private takeFault(path: string, target: string): Fault | undefined {
    for (const rule of this.faults) {
      if (rule.remaining <= 0) continue;
      let hit: boolean;
      if (typeof rule.match === 'string') {
        hit = rule.match === path;
      } else {
        rule.match.lastIndex = 0;
        hit = rule.match.test(target);
      }
      if (!hit) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.faults = this.faults.filter((r) => r !== rule);
      return rule.fault;
    }
    return undefined;
  }

  private answer(exchange: Exchange, fault: AnsweringFault | undefined): void {
    if (exchange.res.destroyed || this.closing !== undefined) return;
    if (fault !== undefined) {
      this.answerFault(exchange, fault);
      return;
    }
    const window = this.windowOf(exchange.credential);
    if (window.used >= window.limit) {
      this.sendRateLimited(exchange, window);
      return;
    }
    if (!this.canAccess(exchange.path, exchange.credential)) {
      // A resource the credential may not see does not exist for it (GitHub hides private ones).
      this.charge(exchange, window);
      this.sendBody(exchange, 404, this.baseHeaders(exchange, window), JSON_TYPE, NOT_FOUND);
      return;
    }
    const method = exchange.call.method;
    if (method === 'GET' || method === 'HEAD') this.answerRead(exchange, window);
    else this.answerWrite(exchange, window);
  }

  /** The rendering of a single resource for this credential (its variant when it has one). */
  private renderedFor(resource: SingleResource, credential: string | undefined): Rendered {
    const key = variantKeyOf(resource.spec.perCredential, credential);
    if (key === undefined) return resource.rendered;
    let variant = resource.variants.get(key);
    if (variant === undefined) {
      const fields = resource.spec.perCredential?.[key];
      const body = { ...(resource.spec.body as Record<string, unknown>), ...fields };
      variant = renderSpec({ ...resource.spec, body }, resource.modifiedMs);
      resource.variants.set(key, variant);
    }
    return variant;
  }

  private answerRead(exchange: Exchange, window: QuotaWindow): void {
    const { path, credential } = exchange;
    let rendered: Rendered | undefined;
    let link: string | undefined;
    const token = path === '/user' ? tokenOf(credential) : undefined;
    const user = token === undefined ? undefined : this.users.get(token);
    const resource = this.resources.get(path);
    if (user !== undefined) {
      rendered = user;
    } else if (resource?.kind === 'single') {
      rendered = this.renderedFor(resource, credential);
    } else if (resource?.kind === 'list') {
      const page = pageOf(exchange.query);
      const perPage = perPageOf(exchange.query);
      const total = resource.items.length;
      const start = Math.min((page - 1) * perPage, total);
      const end = Math.min(start + perPage, total);
      const key = `${start}:${end}`;
      rendered = resource.pages.get(key);
      if (rendered === undefined) {
        rendered = renderPage(resource.itemJson, start, end);
        resource.pages.set(key, rendered);
      }
      link = this.linkHeader(path, exchange.query, page, Math.max(1, Math.ceil(total / perPage)));
    }

    if (rendered === undefined) {
      this.charge(exchange, window);
      const anonymousUser = path === '/user' && credential === undefined && this.users.size > 0;
      this.sendBody(exchange, anonymousUser ? 401 : 404, this.baseHeaders(exchange, window), JSON_TYPE, anonymousUser ? REQUIRES_AUTH : NOT_FOUND);
      return;
    }

    const etag = etagOf(exchange.req, rendered);
    if (isNotModified(exchange.req, rendered, etag)) {
      // GitHub: an authenticated conditional request answered 304 is free; an anonymous one is not.
      if (credential === undefined) this.charge(exchange, window);
      const headers = this.baseHeaders(exchange, window);
      const cacheControl = rendered.headers['cache-control'];
      if (cacheControl !== undefined) headers['cache-control'] = cacheControl;
      // The ETag that matched (the weak comparison ignores W/; the 304 names this body's ETag).
      if (etag !== undefined) headers.etag = etag;
      if (rendered.lastModified !== undefined) headers['last-modified'] = rendered.lastModified;
      exchange.call.status = 304;
      exchange.res.writeHead(304, headers);
      exchange.res.end();
      return;
    }

    this.charge(exchange, window);
    const headers = this.baseHeaders(exchange, window);
    Object.assign(headers, rendered.headers);
    if (etag !== undefined) headers.etag = etag;
    if (rendered.lastModified !== undefined) headers['last-modified'] = rendered.lastModified;
    if (link !== undefined) headers.link = link;
    this.sendRendered(exchange, rendered, headers);
  }

  private answerWrite(exchange: Exchange, window: QuotaWindow): void {
    this.charge(exchange, window);
    const { call } = exchange;
    const headers = this.baseHeaders(exchange, window);
    if (call.method === 'DELETE') {
      call.status = 204;
      exchange.res.writeHead(204, headers);
      exchange.res.end();
      return;
    }
    const echo = Buffer.from(
      JSON.stringify({
        method: call.method,
        path: exchange.path,
        query: exchange.query,
        headers: call.headers,
        body: call.body.toString('utf8'),
      }),
    );
    this.sendBody(exchange, call.method === 'POST' ? 201 : 200, headers, JSON_TYPE, echo);
  }

  private answerFault(exchange: Exchange, fault: AnsweringFault): void {
    const { res, call } = exchange;
    switch (fault.kind) {
      case 'hang': {
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return;
      }
      case 'status': {
        const window = this.windowOf(exchange.credential);
        if (fault.status < 500) this.charge(exchange, window);
        const body =
          fault.body === undefined
            ? encodeBody({ message: STATUS_CODES[fault.status] ?? 'Error', documentation_url: DOCS })
            : encodeBody(fault.body);
        this.sendBody(exchange, fault.status, this.baseHeaders(exchange, window), JSON_TYPE, body);
        return;
      }
      case 'rate-limit': {
        this.sendRateLimited(exchange, this.windowOf(exchange.credential));
        return;
      }
      case 'secondary-rate-limit': {
        const window = this.windowOf(exchange.credential);
        const headers = this.baseHeaders(exchange, window);
        headers['retry-after'] = String(fault.retryAfterSeconds);
        const requestId = headers['x-github-request-id'] as string;
        const body = encodeBody({
          message:
            'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. ' +
            `If you reach out to GitHub Support for help, please include the request ID ${requestId}.`,
          documentation_url: SECONDARY_DOCS,
        });
        this.sendBody(exchange, 429, headers, JSON_TYPE, body);
        return;
      }
      case 'reset-mid-body': {
        const window = this.windowOf(exchange.credential);
        this.charge(exchange, window);
        const resource = this.resources.get(exchange.path);
        let full = resource?.kind === 'single' ? resource.rendered.body : EMPTY;
        if (full.length < 2) full = encodeBody({ message: 'partial', padding: 'x'.repeat(2048) });
        const headers = this.baseHeaders(exchange, window);
        headers['content-type'] = JSON_TYPE;
        headers['content-length'] = String(full.length);
        call.status = 200;
        res.writeHead(200, headers);
        res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroy());
        return;
      }
    }
  }

  // ---- quota -----------------------------------------------------------------------------------

  private windowOf(credential: string | undefined): QuotaWindow {
    const nowSeconds = Date.now() / 1000;
    let window = this.windows.get(credential);
    if (window === undefined || nowSeconds >= window.resetAt) {
      window = {
        limit: credential === undefined ? this.anonymousQuota : this.quota,
        used: 0,
        resetAt: Math.floor(nowSeconds) + WINDOW_SECONDS,
      };
      this.windows.set(credential, window);
    }
    return window;
  }

  private charge(exchange: Exchange, window: QuotaWindow): void {
    window.used += 1;
    this.spent.set(exchange.credential, (this.spent.get(exchange.credential) ?? 0) + 1);
    this.spentTotal += 1;
    exchange.call.countedAgainstQuota = true;
  }

  private sendRateLimited(exchange: Exchange, window: QuotaWindow): void {
    const headers = this.baseHeaders(exchange, window);
    headers['x-ratelimit-remaining'] = '0';
    headers['x-ratelimit-used'] = String(window.limit);
    const who =
      exchange.credential === undefined
        ? `${exchange.req.socket.remoteAddress ?? '127.0.0.1'}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)`
        : 'user ID 1.';
    const body = encodeBody({ message: `API rate limit exceeded for ${who}`, documentation_url: RATE_LIMIT_DOCS });
    this.sendBody(exchange, 403, headers, JSON_TYPE, body);
  }

  // ---- responses -------------------------------------------------------------------------------

  private baseHeaders(exchange: Exchange, window: QuotaWindow): Record<string, string | string[]> {
    const authenticated = exchange.credential !== undefined;
    const headers: Record<string, string | string[]> = {
      'x-ratelimit-limit': String(window.limit),
      'x-ratelimit-remaining': String(Math.max(0, window.limit - window.used)),
      'x-ratelimit-used': String(Math.min(window.used, window.limit)),
      'x-ratelimit-reset': String(window.resetAt),
      'x-ratelimit-resource': 'core',
      'x-github-request-id': this.nextRequestId(),
      'x-github-media-type': 'github.v3; format=json',
      'x-github-api-version-selected': '2022-11-28',
      'cache-control': authenticated ? 'private, max-age=60, s-maxage=60' : 'public, max-age=60, s-maxage=60',
      vary: VARY,
    };
    if (authenticated) headers['x-oauth-scopes'] = 'repo, user';
    return headers;
  }

  private nextRequestId(): string {
    this.requestCounter += 1;
    const n = this.requestCounter.toString(16).toUpperCase().padStart(8, '0');
    return `${this.requestIdPrefix}:${process.pid.toString(16).toUpperCase()}:${n}:${n.slice(-4)}:${Math.floor(Date.now() / 1000).toString(16).toUpperCase()}`;
  }

  private wantsGzip(exchange: Exchange, size: number): boolean {
    return this.gzip && size >= GZIP_MIN_BYTES && acceptsGzip(exchange.req.headers['accept-encoding']);
  }

  private sendRendered(exchange: Exchange, rendered: Rendered, headers: Record<string, string | string[]>): void {
    headers['content-type'] = rendered.contentType;
    let body = rendered.body;
    // Pretty-printing comes after the ETag was computed: the body sent no longer hashes to it.
    let pretty = false;
    if (wantsPretty(exchange.req, rendered.contentType)) {
      if (rendered.pretty === undefined) rendered.pretty = prettyJson(rendered.body);
      if (rendered.pretty !== null) {
        body = rendered.pretty;
        pretty = true;
      }
    }
    if (this.gzip && body.length >= GZIP_MIN_BYTES) {
      headers.vary = [VARY, VARY_ENCODING];
      if (this.wantsGzip(exchange, body.length)) {
        if (pretty) body = rendered.prettyGzipped ??= gzipSync(body);
        else body = rendered.gzipped ??= gzipSync(body);
        headers['content-encoding'] = 'gzip';
      }
    }
    headers['content-length'] = String(body.length);
    exchange.call.status = rendered.status;
    exchange.res.writeHead(rendered.status, headers);
    exchange.res.end(body);
  }

  private sendBody(
    exchange: Exchange,
    status: number,
    headers: Record<string, string | string[]>,
    contentType: string,
    body: Buffer,
  ): void {
    headers['content-type'] = contentType;
    let payload = body;
    if (wantsPretty(exchange.req, contentType)) payload = prettyJson(body) ?? body;
    if (this.gzip && payload.length >= GZIP_MIN_BYTES) {
      headers.vary = [VARY, VARY_ENCODING];
      if (this.wantsGzip(exchange, payload.length)) {
        payload = gzipSync(payload);
        headers['content-encoding'] = 'gzip';
      }
    }
    headers['content-length'] = String(payload.length);
    exchange.call.status = status;
    exchange.res.writeHead(status, headers);
    exchange.res.end(payload);
  }

  private linkHeader(path: string, query: string, page: number, lastPage: number): string | undefined {
    if (lastPage <= 1 && page <= 1) return undefined;
    const base = `${this.url}${path}?`;
    const links: string[] = [];
    if (page > 1) links.push(`<${base}${withPage(query, page - 1)}>; rel="prev"`);
    if (page < lastPage) {
      links.push(`<${base}${withPage(query, page + 1)}>; rel="next"`);
      links.push(`<${base}${withPage(query, lastPage)}>; rel="last"`);
    }
    if (page > 1) links.push(`<${base}${withPage(query, 1)}>; rel="first"`);
    return links.join(', ');
  }
}
