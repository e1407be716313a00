/**
 * Errors at the HTTP edge: a fastify plugin (the one error handler, the 405 for methods the router
 * does not know, the CONNECT refusal) and the two handlers fastify takes at construction (targets its
 * router refuses; requests node's HTTP parser refuses: 408 / 431 / 400, written on the socket).
 * Every answer the mirror makes itself is the JSON of errors.ts, {"message","code"}, with the status
 * its code maps to. An unexpected error is logged, never echoed: the client gets a generic 500.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { UserCheckFailed } from '../../domain/use-cases/admit-client.js';
import { ErrorCode, GovernorWaitExceeded, describeError, isMirrorError, type MirrorFailure } from '../../domain/errors.js';
import { errorJson, statusForCode } from './errors.js';
import { cacheStatusValue, type CacheStatusFacts } from './cache-status.js';
import { definePlugin } from './plugin.js';
import { REQUEST_LOG_PLUGIN, type RequestState } from './request-log.plugin.js';

export const ERRORS_PLUGIN = 'mirror-errors';

const JSON_TYPE = 'application/json; charset=utf-8';

/** An answer the edge makes itself, for fastify's reply or a raw ServerResponse (answer.ts). */
export interface EdgeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** The mirror's own error answer: status, JSON content type, {"message","code"}. */
export function errorAnswer(status: number, code: string, message: string): EdgeAnswer {
  return { status, headers: { 'content-type': JSON_TYPE }, body: errorJson(message, code) };
}

/** The mirror's own error answer through fastify: status, JSON content type, {"message","code"}. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return sendAnswer(reply, errorAnswer(status, code, message));
}

/** An EdgeAnswer through fastify. */
export function sendAnswer(reply: FastifyReply, answer: EdgeAnswer): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

/**
 * The answer to a request the mirror could not serve (upstream failed, nothing cached): the status of
 * the failure's code, its JSON, and the outcome as X-Cache and Cache-Status.
 */
export function failureAnswer(failure: MirrorFailure, facts: CacheStatusFacts): EdgeAnswer {
  const headers: Record<string, string> = { 'content-type': JSON_TYPE, 'x-cache': facts.outcome, 'cache-status': cacheStatusValue(facts) };
  if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
  return { status: statusForCode(failure.code), headers, body: errorJson(failure.message, failure.code) };
}

export function sendFailure(reply: FastifyReply, failure: MirrorFailure, facts: CacheStatusFacts): FastifyReply {
  return sendAnswer(reply, failureAnswer(failure, facts));
}

/**
 * The answer to an error a request's handling threw: the allowlist's /user answer relayed, a
 * MirrorError's status and JSON, a framework 4xx as it is; anything else is `unexpected` (the caller
 * logs it) and a generic 500 — never its message. Sets the request's outcome where the error has one.
 */
export function answerForError(error: Error & { statusCode?: number; code?: string }, state: RequestState, unexpected: (error: Error) => void): EdgeAnswer {
  if (error instanceof UserCheckFailed) {
    // The allowlist's GET /user answer (GitHub's 401, a rate limit, an upstream error) relayed as it is.
    const answer = error.answer;
    state.outcome = answer.outcome;
    if (answer.error !== undefined) return failureAnswer(answer.error, answer);
    const headers: Record<string, string> = { ...answer.headers, 'x-cache': answer.outcome, 'cache-status': cacheStatusValue(answer) };
    if (answer.staleAgeSeconds !== undefined) headers['x-cache-stale-age'] = String(answer.staleAgeSeconds);
    return { status: answer.status, headers, body: Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength) };
  }
  if (isMirrorError(error)) {
    const answer = errorAnswer(statusForCode(error.code), error.code, error.message);
    if (error instanceof GovernorWaitExceeded) answer.headers['retry-after'] = String(error.retryAfterSeconds);
    return answer;
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return errorAnswer(error.statusCode, error.code ?? ErrorCode.BAD_REQUEST, error.message);
  }
  unexpected(error);
  return errorAnswer(statusForCode(ErrorCode.INTERNAL), ErrorCode.INTERNAL, 'Internal mirror error');
}

export const errorsPlugin = definePlugin({ name: ERRORS_PLUGIN, dependencies: [REQUEST_LOG_PLUGIN], decorators: { request: ['mirror'] } }, (app) => {
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (request.mirror.streamingUpstream === true && !isMirrorError(error)) {
      // The upstream body broke before a byte reached the client (after that, fastify cuts the client
      // connection itself, so a partial body never looks complete): an upstream failure, not a mirror bug.
      const timeout = error.code === 'UND_ERR_BODY_TIMEOUT';
      const outcome = timeout ? 'API_TIMEOUT_MISS' : 'API_CONNECTION_ERROR_MISS';
      const failure: MirrorFailure = timeout
        ? { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' }
        : { code: ErrorCode.UPSTREAM_UNREACHABLE, message: 'GitHub closed the connection in the middle of the answer' };
      request.mirror.outcome = outcome;
      request.mirror.cause = describeError(error);
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
      void sendFailure(reply, failure, { outcome, collapsed: false, fromCache: false });
      return;
    }
    void sendAnswer(reply, answerForError(error, request.mirror, (err) => request.log.error({ err }, 'unexpected error')));
  });
  app.setNotFoundHandler((_request, reply) => {
    void sendError(reply, statusForCode(ErrorCode.METHOD_NOT_ALLOWED), ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported by the mirror');
  });

  // CONNECT (authority-form) is a tunnel request: refused, never opened.
  const server = app.server;
  server.on('connect', refuseConnect);
  app.addHook('onClose', (_app, done) => {
    server.off('connect', refuseConnect);
    done();
  });
});

function refuseConnect(_request: IncomingMessage, socket: Socket): void {
  const body = errorJson('CONNECT is not supported: the mirror is not a forward proxy', ErrorCode.BAD_REQUEST_TARGET);
  writeOnSocket(socket, statusForCode(ErrorCode.METHOD_NOT_ALLOWED), 'Method Not Allowed', body);
}

/**
 * fastify's `frameworkErrors`: targets the router itself refuses (malformed percent-encoding, over-long
 * parameters) get the same JSON as every other error the mirror makes, without echoing the target.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  request.mirror ??= { outcome: 'NONE', method: request.method, url: request.raw.url, since: performance.now() };
  const badUrl = error.code === 'FST_ERR_BAD_URL';
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : statusForCode(ErrorCode.BAD_REQUEST);
  void sendError(reply, status, badUrl ? ErrorCode.BAD_REQUEST_TARGET : error.code, badUrl ? 'request path has a malformed percent-encoding' : 'request target refused');
}

/** What node's HTTP parser reports, as the mirror's codes. */
const CLIENT_ERROR_CODES: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: ErrorCode.REQUEST_TIMEOUT,
  HPE_HEADER_OVERFLOW: ErrorCode.HEADERS_TOO_LARGE,
};

const CLIENT_ERROR_MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.REQUEST_TIMEOUT]: 'Request timed out',
  [ErrorCode.HEADERS_TOO_LARGE]: 'Request headers too large',
  [ErrorCode.BAD_REQUEST]: 'Malformed HTTP request',
};

/**
 * fastify's `clientErrorHandler`: a request node's parser refused or that came too slowly never reaches
 * fastify's routing; it is answered on the socket (the message doubles as the reason phrase).
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code = CLIENT_ERROR_CODES[error.code ?? ''] ?? ErrorCode.BAD_REQUEST;
  const message = CLIENT_ERROR_MESSAGES[code] ?? 'Malformed HTTP request';
  writeOnSocket(socket, statusForCode(code), message, errorJson(message, code));
}

/** A whole JSON answer written on a raw socket, which is then closed. */
function writeOnSocket(socket: Socket, status: number, reason: string, body: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
