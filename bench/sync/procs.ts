import { readFile } from 'node:fs/promises';

/** RSS now and at its peak (bytes), CPU seconds (user + system) of one process, from /proc. */
export async function procStats(
  pid: number,
): Promise<{ rssBytes: number; peakRssBytes: number; cpuS: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return {
    rssBytes: rss ? Number(rss[1]) * 1024 : 0,
    peakRssBytes: hwm ? Number(hwm[1]) * 1024 : 0,
    cpuS: ticks / 100,
  };
}

/** Reset a process's peak RSS so each workload reports its own (Linux clear_refs 5). */
export async function resetPeak(pid: number): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

/** A process and its children (Syncthing runs a monitor process and the real one under it). */
export async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  const { readdir } = await import('node:fs/promises');
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const kids = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const k of kids.trim().split(/\s+/).filter(Boolean))
      out.push(...(await processTree(Number(k))));
  }
  return out;
}
