import { X509Certificate } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { WaveNode } from '../node/index.js';
import { isMember } from '../replica/index.js';
import { forgetMember } from '../sync/index.js';
import {
  channelKey,
  deviceIdOf,
  httpProof,
  isLoopback,
  REASON_HEADER,
} from '../transport/index.js';
import { compareDirs } from './check.js';
import { LockedError, readLock, takeLock } from './lock.js';

export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** `check`: 0 identical, 1 differ (listed), 2 usage. */
export async function checkCommand(o: {
  dirs: string;
  json: boolean;
  ignoreConflicts: boolean;
  ignore: string[];
}): Promise<number> {
  const dirs = o.dirs.split(',').filter((d) => d !== '');
  if (dirs.length < 2) {
    process.stderr.write('filesync: check needs at least two directories (--dirs a,b)\n');
    return 2;
  }
  for (const d of dirs) {
    try {
      await access(d);
    } catch {
      process.stderr.write(`filesync: no such directory: ${d}\n`);
      return 2;
    }
  }
  const diffs = await compareDirs(dirs, { skipConflicts: o.ignoreConflicts, ignore: o.ignore });
  if (o.json)
    process.stdout.write(
      JSON.stringify({ identical: diffs.length === 0, differences: diffs }) + '\n',
    );
  else if (diffs.length === 0) process.stdout.write(`identical: ${dirs.join(', ')}\n`);
  else {
    process.stdout.write(`${diffs.length} difference(s):\n`);
    for (const d of diffs.slice(0, 200)) {
      process.stdout.write(`  ${d.path}\n`);
      for (const [dir, v] of Object.entries(d.sides))
        process.stdout.write(`    ${dir}: ${v ?? 'missing'}\n`);
    }
    if (diffs.length > 200) process.stdout.write(`  … and ${diffs.length - 200} more\n`);
  }
  return diffs.length === 0 ? 0 : 1;
}

interface Answer {
  status: number;
  body: string;
}

/**
 * GET a route of a node: plain HTTP on this machine (the secret as a bearer, the control token
 * if we have it), else TLS with a proof of the secret bound to the channel (the secret itself
 * never crosses the network, even to an impostor).
 */
async function get(
  addr: string,
  route: string,
  auth: { secret?: string | undefined; token?: string | undefined },
  hint: string,
): Promise<Answer> {
  const host = addr.replace(/:\d+$/, '');
  const local = isLoopback(host) || host === '0.0.0.0' || host === '[::]';
  try {
    if (local) {
      const headers: Record<string, string> = {};
      if (auth.secret) headers.authorization = `Bearer ${auth.secret}`;
      if (auth.token) headers['x-wavekv-token'] = auth.token;
      const res = await fetch(`http://${addr}${route}`, {
        headers,
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.text() };
    }
    return await getOverTls(addr, route, auth.secret);
  } catch (e) {
    if (e instanceof CommandError) throw e;
    const why =
      (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : String(e);
    throw new CommandError(`cannot reach ${addr}: ${why}${hint}`);
  }
}

function getOverTls(addr: string, route: string, secret: string | undefined): Promise<Answer> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(addr)!;
  return new Promise((resolve, reject) => {
    const req = request({
      host: m[1],
      port: Number(m[2]),
      path: route,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      timeout: 10_000,
    });
    req.once('socket', (s) =>
      s.once('secureConnect', () => {
        if (secret)
          req.setHeader(
            'authorization',
            `Filesync-Proof ${httpProof(secret, channelKey(s as TLSSocket))}`,
          );
        req.end();
      }),
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const why = res.headers[REASON_HEADER];
        resolve({
          status: res.statusCode ?? 0,
          body: typeof why === 'string' ? why : Buffer.concat(chunks).toString(),
        });
      });
    });
  });
}

/** `id`: the device ID of the node using `dir`, for its peers' --trust or --peers ID@. */
export async function idCommand(o: { dir: string; dataDir?: string }): Promise<void> {
  const dataDir = path.resolve(o.dataDir ?? path.join(path.resolve(o.dir), '.filesync'));
  let pem: string;
  try {
    pem = await readFile(path.join(dataDir, 'device-cert.pem'), 'utf8');
  } catch {
    throw new CommandError(`no device in ${dataDir}: start the node once to make one`);
  }
  let id: string;
  try {
    id = deviceIdOf(new X509Certificate(pem).raw);
  } catch {
    throw new CommandError(`${path.join(dataDir, 'device-cert.pem')} is not a certificate`);
  }
  process.stdout.write(`${id}\n`);
}

/** The node to ask: --peer, else the one running on --dir (its lock file), else the default. */
async function statusAddress(o: {
  peer?: string;
  dir?: string;
  dataDir?: string;
}): Promise<{ addr: string; token?: string | undefined }> {
  if (o.peer !== undefined) return { addr: o.peer };
  if (o.dir === undefined && o.dataDir === undefined) return { addr: '127.0.0.1:7400' };
  const dataDir = path.resolve(o.dataDir ?? path.join(path.resolve(o.dir!), '.filesync'));
  const lock = await readLock(dataDir);
  if (lock === null || lock.advertise === null)
    throw new CommandError(`no node is running on ${o.dir ?? dataDir} (no lock in ${dataDir})`);
  return { addr: lock.advertise, token: lock.token };
}

export async function statusCommand(o: {
  peer?: string;
  dir?: string;
  dataDir?: string;
  secret?: string;
  json: boolean;
}): Promise<void> {
  const { addr, token } = await statusAddress(o);
  const hint =
    o.peer === undefined && o.dir === undefined
      ? ' (is a node running? give --dir <its synced dir> or --peer host:port)'
      : '';
  const secret = o.secret ?? process.env.FILESYNC_SECRET;
  const res = await get(addr, '/status', { secret, token }, hint);
  if (res.status === 401)
    throw new CommandError('unauthorized: give the cluster secret (--secret or FILESYNC_SECRET)');
  if (res.status !== 200)
    throw new CommandError(`status answered ${res.status}: ${res.body.trim()}`);
  const s = JSON.parse(res.body) as {
    node: {
      id: number;
      device?: string;
      advertise: string;
      keys: number;
      lastSeq: number;
      digest: string;
    };
    peers: {
      id: number;
      connected: boolean;
      advertise: string | null;
      coversOurs: number;
      rttMs: number | null;
    }[];
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    `node ${s.node.id} (device ${s.node.device ?? '?'}) at ${s.node.advertise}: ${s.node.keys} keys, last seq ${s.node.lastSeq}, digest ${s.node.digest}\n`,
  );
  for (const p of s.peers) {
    const pct = s.node.lastSeq === 0 ? 100 : Math.floor((100 * p.coversOurs) / s.node.lastSeq);
    process.stdout.write(
      `  peer ${p.id} ${p.connected ? 'up  ' : 'down'} ${p.advertise ?? ''} covers ${pct}% of our writes${p.rttMs !== null ? `, rtt ${p.rttMs} ms` : ''}\n`,
    );
  }
}

export async function forgetPeerCommand(
  id: number,
  o: { dir: string; dataDir?: string },
): Promise<void> {
  const dataDir = path.resolve(o.dataDir ?? path.join(path.resolve(o.dir), '.filesync'));
  try {
    await access(path.join(dataDir, 'node'));
  } catch {
    throw new CommandError(`no filesync data in ${dataDir}`, 2);
  }
  // Held for the whole change, so a node started meanwhile is refused instead of opening the
  // same write-ahead log (a check of the lock alone left that window open).
  let lock: Awaited<ReturnType<typeof takeLock>>;
  try {
    lock = await takeLock(dataDir);
  } catch (e) {
    if (!(e instanceof LockedError) || e.holderPid === null) throw e;
    return forgetThroughRunningNode(id, dataDir);
  }
  try {
    const node = await WaveNode.open({ dataDir });
    try {
      if (!isMember(node, id)) {
        throw new CommandError(`node ${id} is not a member here`);
      }
      await forgetMember(node, id);
    } finally {
      await node.close();
    }
  } finally {
    await lock.release();
  }
  process.stdout.write(`forgot node ${id}; every member will drop it once this node syncs\n`);
}

/** The node is running: ask it, with the control token from its lock file. */
async function forgetThroughRunningNode(id: number, dataDir: string): Promise<void> {
  const holder = await readLock(dataDir);
  if (holder === null || holder.advertise === null || holder.token === undefined)
    throw new CommandError(
      `the node using ${dataDir} is starting or stopping; try again in a moment`,
    );
  const url = `http://${holder.advertise}/forget-peer/${id}`;
  const secret = process.env.FILESYNC_SECRET;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'x-wavekv-token': holder.token,
        ...(secret && { authorization: `Bearer ${secret}` }),
      },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new CommandError(`cannot reach the running node at ${holder.advertise}: ${String(e)}`);
  }
  if (res.status === 401)
    throw new CommandError('unauthorized: set FILESYNC_SECRET to the cluster secret');
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new CommandError(body.error ?? `the running node answered ${res.status}`);
  process.stdout.write(
    `forgot node ${id} (told the running node, pid ${holder.pid}); every member will drop it once this node syncs\n`,
  );
}
