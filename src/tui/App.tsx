import { Box, Text, useApp, useInput, useStdin, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import { humanBytes, percent, type StatusSource, type TuiModel } from './model.js';

/** A progress bar that fits `width` columns, with the percentage after it. */
export function Bar({
  done,
  total,
  width,
}: {
  done: number;
  total: number;
  width: number;
}): React.JSX.Element {
  const pct = percent(done, total);
  const w = Math.max(4, width);
  const full = Math.round((pct / 100) * w);
  return (
    <Text>
      <Text color={pct === 100 ? 'green' : 'yellow'}>{'█'.repeat(full)}</Text>
      <Text dimColor>{'░'.repeat(w - full)}</Text>
      <Text> {String(pct).padStart(3)}%</Text>
    </Text>
  );
}

function age(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  return `${Math.round(ms / 1000)} s`;
}

/** A round's age: they come every second, so only a late one shows how late. */
function roundAge(ms: number | null): string {
  if (ms === null) return '—';
  return ms < 2000 ? '<2 s' : `${Math.round(ms / 1000)} s`;
}

/** Round-trip time; loopback and LAN times (a few ms, varying) all read the same. */
function rtt(ms: number | null): string {
  return ms !== null && ms < 5 ? '<5 ms' : age(ms);
}

/** A transfer rate; an idle link's rounds (~200 B/s, varying by a byte) all read the same. */
function rate(bytesPerSec: number): string {
  return bytesPerSec < 1024 ? '<1 KiB' : humanBytes(bytesPerSec);
}

/**
 * What the screen shows of a model. Only a change in it is drawn: an idle node's screen then
 * costs no React or layout work, whose garbage kept its heap growing (TUI idle RSS).
 */
function shown(m: TuiModel): string {
  return JSON.stringify(m, (k, v: unknown) => {
    if (k === 'lastRoundAgeMs') return roundAge(v as number | null);
    if (k === 'rttMs') return rtt(v as number | null);
    if (k === 'bytesInPerSec' || k === 'bytesOutPerSec' || k === 'bytesPerSec')
      return rate(v as number);
    return v;
  });
}

function Header({ m }: { m: TuiModel['header'] }): React.JSX.Element {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text wrap="truncate">
        <Text bold>filesync</Text> node <Text color="cyan">{m.id}</Text> on {m.listen} · {m.dir}
      </Text>
      <Text wrap="truncate">
        {m.files} files · {humanBytes(m.bytes)} · next seq {m.nextSeq} · digest{' '}
        {m.digest.slice(0, 12)} ·{' '}
        <Text color={m.syncState === 'in sync' ? 'green' : 'yellow'}>{m.syncState}</Text>
        {m.problems ? <Text color="red"> · {m.problems}</Text> : null}
      </Text>
      {m.device ? (
        <Text dimColor wrap="truncate">
          device {m.device}
        </Text>
      ) : null}
    </Box>
  );
}

function Peers({
  peers,
  barWidth,
  wide,
}: {
  peers: TuiModel['peers'];
  barWidth: number;
  /** Room for the address and the round's age (100 columns or more). */
  wide: boolean;
}): React.JSX.Element {
  return (
    <Box flexDirection="column">
      <Text bold>Peers</Text>
      {peers.length === 0 && <Text dimColor> no peers yet</Text>}
      {peers.map((p) => (
        <Box key={p.id} flexDirection="column">
          <Text wrap="truncate">
            {' '}
            <Text color={p.connected ? 'green' : 'red'}>{p.connected ? '●' : '○'}</Text>{' '}
            {String(p.id).padEnd(10)} {wide ? `${(p.address ?? '').padEnd(21)} ` : ''}
            {p.connected ? (
              <>
                {wide ? `round ${roundAge(p.lastRoundAgeMs).padStart(6)} ` : ''}rtt{' '}
                {rtt(p.rttMs).padStart(6)} digest{' '}
                {p.digestAgrees === null ? '?' : p.digestAgrees ? '=' : '≠'} in{' '}
                {rate(p.bytesInPerSec)}/s out {rate(p.bytesOutPerSec)}/s
              </>
            ) : (
              <Text dimColor>disconnected</Text>
            )}
          </Text>
          <Text wrap="truncate">
            {'   '}ours <Bar done={p.oursCovered} total={p.oursTotal} width={barWidth} /> theirs{' '}
            <Bar done={p.theirsCovered} total={p.theirsTotal} width={barWidth} />
          </Text>
        </Box>
      ))}
    </Box>
  );
}

function Origins({
  origins,
  barWidth,
}: {
  origins: TuiModel['origins'];
  barWidth: number;
}): React.JSX.Element {
  return (
    <Box flexDirection="column">
      <Text bold>Writes by origin</Text>
      {origins.map((o) => (
        <Text key={o.node} wrap="truncate">
          {' '}
          {String(o.node).padEnd(10)} <Bar done={o.covered} total={o.known} width={barWidth} />{' '}
          {o.covered}/{o.known}
        </Text>
      ))}
    </Box>
  );
}

function Transfers({
  transfers,
  barWidth,
}: {
  transfers: TuiModel['transfers'];
  barWidth: number;
}): React.JSX.Element {
  if (transfers.length === 0) return <Text dimColor>No transfers</Text>;
  return (
    <Box flexDirection="column">
      <Text bold>Transfers</Text>
      {transfers.slice(0, 5).map((t) => (
        <Text key={t.path} wrap="truncate">
          {' '}
          <Bar done={t.bytesDone} total={t.size} width={barWidth} /> {rate(t.bytesPerSec)}/s{' '}
          {t.path}
        </Text>
      ))}
    </Box>
  );
}

function Events({ events, rows }: { events: TuiModel['events']; rows: number }): React.JSX.Element {
  const shown = rows > 0 ? events.slice(-rows) : [];
  return (
    <Box flexDirection="column">
      <Text bold>Events</Text>
      {shown.map((e, i) => (
        <Text
          key={i}
          wrap="truncate"
          color={
            e.kind === 'error' || e.kind === 'held'
              ? 'red'
              : e.kind === 'conflict'
                ? 'yellow'
                : undefined
          }
        >
          {' '}
          {new Date(e.timeMs).toISOString().slice(11, 19)} {e.kind.padEnd(9)} {e.text}
        </Text>
      ))}
    </Box>
  );
}

export interface AppProps {
  source: StatusSource;
  /** Redraw period (default 200 ms: 5 redraws/s, within the ≤ 10/s budget). */
  refreshMs?: number;
  onQuit?: () => void;
  /** The terminal's size, when not the stdout's (tests). */
  size?: { columns: number; rows: number };
}

/** The whole screen. It polls the source; it never blocks the node, which keeps syncing. */
export function App({ source, refreshMs = 200, onQuit, size: fixed }: AppProps): React.JSX.Element {
  const [model, setModel] = useState<TuiModel>(() => source.snapshot());
  const { stdout } = useStdout();
  const [measured, setSize] = useState({
    columns: stdout.columns || 100,
    rows: stdout.rows || 30,
  });
  const size = fixed ?? measured;
  const { exit } = useApp();
  // Keys need a raw-mode stdin; without one (piped input) the UI still runs, q just is not read.
  const { isRawModeSupported } = useStdin();

  useEffect(() => {
    let last = '';
    const t = setInterval(() => {
      const next = source.snapshot();
      const key = shown(next);
      if (key === last) return;
      last = key;
      setModel(next);
    }, refreshMs);
    return () => clearInterval(t);
  }, [source, refreshMs]);

  useEffect(() => {
    const onResize = (): void =>
      setSize({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);

  useInput(
    (input, key) => {
      if (input === 'q' || (key.ctrl && input === 'c')) {
        onQuit?.();
        exit();
      }
    },
    { isActive: isRawModeSupported === true },
  );

  const barWidth = Math.max(6, Math.min(30, Math.floor((size.columns - 40) / 2)));
  // Header (border, two lines, the device's), the sections' titles, their rows, "q quit".
  const headerRows = 4 + (model.header.device ? 1 : 0);
  const transferRows = model.transfers.length === 0 ? 1 : 1 + Math.min(5, model.transfers.length);
  const used =
    headerRows + 1 + model.peers.length * 2 + 1 + model.origins.length + transferRows + 1 + 1;
  return (
    <Box flexDirection="column" width={size.columns}>
      <Header m={model.header} />
      <Peers peers={model.peers} barWidth={barWidth} wide={size.columns >= 100} />
      <Origins origins={model.origins} barWidth={barWidth} />
      <Transfers transfers={model.transfers} barWidth={barWidth} />
      {/* One row spare: a frame as tall as the terminal makes Ink clear the screen each time. */}
      <Events events={model.events} rows={size.rows - used - 1} />
      <Text dimColor>q quit</Text>
    </Box>
  );
}
