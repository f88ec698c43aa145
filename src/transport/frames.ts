/**
 * Owns: the bytes of a link's frames: msgpack encoding with a size hint, large blocks sent
 * uncopied after a block-head, decoding into a control frame or a validated sync message.
 * Must not touch: connection state (the transport decides what a frame means for the link).
 */
import type { RawData, WebSocket } from 'ws';
import { Codec } from '../codec/index.js';
import {
  parseMessage,
  ProtocolError,
  type BlockResponse,
  type SyncMessage,
} from '../sync/index.js';
import { parseControl, type ControlFrame } from './handshake.js';
import { scavenger } from './scavenger.js';

// Values are decoded as views of the frame; parseMessage copies them out compactly.
const packr = new Codec({ useRecords: false, mapsAsObjects: true });
/** Blocks at least this large are written to the socket as they are (see sendBlock). */
const UNCOPIED_BLOCK_MIN_BYTES = 64 * 1024;
const OPEN = 1;

/** Byte and frame counts, per link and for the whole transport. */
export interface FrameCounts {
  bytesIn: number;
  bytesOut: number;
  framesIn?: number;
  framesOut?: number;
}

/** Send one frame on `ws`; false when the socket is not open. */
export function sendFrame(
  ws: WebSocket,
  counts: FrameCounts[],
  frame: ControlFrame | SyncMessage,
): boolean {
  if (ws.readyState !== OPEN) return false;
  if (frame.t === 'block-res') return sendBlock(ws, counts, frame);
  sendBytes(ws, counts, packr.pack(frame, payloadBytes(frame)));
  return true;
}

/**
 * A large block goes out as a block-head and then its bytes in a frame of their own, as they
 * are: never copied into an encode buffer (`ws` writes an unmasked frame's data as given, and
 * copies before it masks); one message in two fragments would do the same on the wire, but
 * `ws` joins fragments with a copy of its own at the receiver. The lender gets `sent` once the
 * socket took the bytes.
 */
function sendBlock(ws: WebSocket, counts: FrameCounts[], frame: BlockResponse): boolean {
  const { rid, data, sent } = frame;
  if (data === null || data.length < UNCOPIED_BLOCK_MIN_BYTES) {
    sendBytes(ws, counts, packr.pack({ t: 'block-res', rid, data }, payloadBytes(frame)));
    sent?.();
    return true;
  }
  sendBytes(ws, counts, packr.pack({ t: 'block-head', rid, bytes: data.length }));
  sendBytes(ws, counts, data, () => sent?.());
  return true;
}

/** One binary frame; `done` once the socket took it (or gave up). */
function sendBytes(
  ws: WebSocket,
  counts: FrameCounts[],
  bytes: Uint8Array,
  done?: () => void,
): void {
  for (const c of counts) {
    c.bytesOut += bytes.length;
    if (c.framesOut !== undefined) c.framesOut++;
  }
  scavenger.note(bytes.length);
  ws.send(bytes, { binary: true }, done);
}

/** A received frame as one buffer, counted. */
export function receivedBytes(data: RawData, counts: FrameCounts[]): Buffer {
  const buf = Array.isArray(data)
    ? Buffer.concat(data)
    : Buffer.isBuffer(data)
      ? data
      : Buffer.from(data);
  for (const c of counts) {
    c.bytesIn += buf.length;
    if (c.framesIn !== undefined) c.framesIn++;
  }
  scavenger.note(buf.length);
  return buf;
}

/** Decode a frame; throws a ProtocolError (or the codec's error) with a one-line reason. */
export function decodeFrame(
  buf: Buffer,
  isBinary: boolean,
  maxEntriesPerMessage: number,
): { control: ControlFrame } | { msg: SyncMessage } {
  let x: unknown;
  let control: ControlFrame | null;
  try {
    if (!isBinary) throw new Error('text frame');
    x = packr.unpack(buf);
    control = parseControl(x);
  } catch (e) {
    throw new ProtocolError(`bad frame: ${(e as Error).message}`);
  }
  if (control !== null) return { control };
  return { msg: parseMessage(x, maxEntriesPerMessage) };
}

/**
 * About how many bytes a frame's block data takes (0 for frames without any), so the codec
 * packs a 1 MiB block into one buffer of its size instead of growing one 4× and copying.
 */
function payloadBytes(frame: ControlFrame | SyncMessage): number {
  if (frame.t === 'block-res') return frame.data === null ? 0 : frame.data.length + 256;
  if (frame.t === 'blocks-res') {
    let n = 256;
    for (const d of frame.data) n += (d?.length ?? 0) + 8;
    return n;
  }
  return 0;
}
