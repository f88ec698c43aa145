/**
 * Owns: who may call the plain HTTP routes (/status, /metrics, control): never a browser page
 * (Origin, DNS rebinding), and with a secret only callers that prove it.
 * Must not touch: what the routes answer (the embedder's handler).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { logger } from '../log/index.js';
import { channelKey, httpProof, macMatches } from './handshake.js';

const log = logger('transport');

/** What a plain HTTP route may show its caller. */
export interface HttpAccess {
  /** The caller proved the cluster secret (bearer over loopback, or a channel-bound proof). */
  proven: boolean;
  tls: boolean;
}

export type HttpHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  access: HttpAccess,
) => boolean;

export function serveHttp(
  o: { secret: string | null; advertise: string | null },
  http: HttpHandler | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  tls: boolean,
): void {
  const deny = (code: number, why: string): void =>
    void res.writeHead(code, { 'content-type': 'text/plain', connection: 'close' }).end(`${why}\n`);
  if (!hostAllowed(req.headers.host, o.advertise))
    return deny(403, 'unknown Host (DNS rebinding?)');
  if (req.headers.origin !== undefined) return deny(403, 'browser origins are refused');
  const proven = o.secret !== null && proves(o.secret, req, tls);
  if (o.secret !== null && !proven) return deny(401, 'unauthorized');
  try {
    if (http?.(req, res, { proven, tls })) return;
  } catch (e) {
    log.warn('http handler failed', { url: req.url, error: String(e) });
    if (!res.headersSent) res.writeHead(500).end('internal error\n');
    return;
  }
  deny(404, 'not found');
}

/** An IP literal, localhost or our advertised name: a rebound DNS name is someone else's. */
export function hostAllowed(host: string | undefined, advertise: string | null): boolean {
  if (host === undefined) return false;
  const bare = (s: string): string => s.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const name = bare(host);
  return isIP(name) !== 0 || name === 'localhost' || name === bare(advertise ?? '');
}

/** The secret as a bearer (plain HTTP, from this machine only) or proven over this TLS channel. */
function proves(secret: string, req: IncomingMessage, tls: boolean): boolean {
  const auth = req.headers.authorization ?? '';
  if (!tls) return macMatches(Buffer.from(`Bearer ${secret}`), Buffer.from(auth));
  const m = /^Filesync-Proof ([0-9a-f]{64})$/.exec(auth);
  if (m === null) return false;
  const want = Buffer.from(httpProof(secret, channelKey(req.socket as TLSSocket)));
  return macMatches(want, Buffer.from(m[1]!));
}
