/**
 * The textfile collector against node_exporter's (Debian's 1.5), side by side
 * on one directory: the same families from the good files, the same mtimes,
 * the same scrape_error for a file with a timestamp and a file that does not
 * parse, and 0 once those are gone. About 10 s.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { missingTool, NODE_EXPORTER, scrape, startAgent, startNodeExporter, type Scrape } from './servers.js';

const GOOD: Record<string, string> = {
  'apt.prom': [
    '# HELP apt_upgrades_pending Apt packages pending updates by origin.',
    '# TYPE apt_upgrades_pending gauge',
    'apt_upgrades_pending{origin="Debian:trixie/main",arch="arm64"} 3',
    'apt_upgrades_pending{origin="Raspberry Pi Foundation:trixie/main",arch="arm64"} 0',
    '# TYPE node_reboot_required gauge',
    'node_reboot_required 1',
  ].join('\n') + '\n',
  'backup.prom': [
    '# a plain comment',
    'backup_last_success_timestamp_seconds 1764892800',
    '# HELP backup_bytes_total Bytes written by the backup job, with "quotes" and a \\\\ backslash.',
    '# TYPE backup_bytes_total counter',
    'backup_bytes_total{target="nas",note="line\\nbreak \\"q\\""} 1.5e+09',
    '# TYPE job_duration_seconds histogram',
    'job_duration_seconds_bucket{le="1"} 2',
    'job_duration_seconds_bucket{le="+Inf"} 5',
    'job_duration_seconds_sum 17.5',
    'job_duration_seconds_count 5',
  ].join('\n') + '\n',
};
const BAD: Record<string, string> = {
  'stamped.prom': 'ts_metric 1 1700000000000\n',
  'broken.prom': 'bad line here {\n',
};

const names = (s: Scrape) => new Set([...s.series.values()].map((x) => x.name));
const only = (s: Scrape, keep: (name: string) => boolean) =>
  Object.fromEntries([...s.series.entries()].filter(([, v]) => keep(v.name)).map(([k, v]) => [k, v.value]));

t.test('textfile collector: the agent and node_exporter read one directory alike', { skip: missingTool(NODE_EXPORTER) }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-textfile-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [f, text] of Object.entries({ ...GOOD, ...BAD })) fs.writeFileSync(path.join(dir, f), text);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a .prom file\n');

  const [agent, ne] = await Promise.all([startAgent(t, 500, ['--metrics-textfile-dir', dir]), startNodeExporter(t, [`--collector.textfile.directory=${dir}`])]);
  const [a, n] = [await scrape(agent), await scrape(ne)];
  const fromFiles = (name: string) => !/^(node|piswarm|process|go|promhttp)_/.test(name) || name === 'node_reboot_required';
  const aFiles = only(a, fromFiles);
  const nFiles = only(n, fromFiles);
  t.same(aFiles, nFiles, 'the same series and values from the good files');
  t.ok(Object.keys(aFiles).length >= 9, `${Object.keys(aFiles).length} series read from the files`);
  for (const name of names(a)) if (fromFiles(name) && n.types.has(name)) t.equal(a.types.get(name), n.types.get(name), `${name}: same type`);
  t.equal(a.types.get('job_duration_seconds'), n.types.get('job_duration_seconds'), 'a histogram stays a histogram');
  t.notOk(names(a).has('ts_metric'), 'a file with a client-side timestamp is skipped whole');
  t.same(only(a, (x) => x.startsWith('node_textfile_')), only(n, (x) => x.startsWith('node_textfile_')), 'mtimes of the files read and scrape_error 1, as node_exporter');
  t.equal(a.series.get('node_textfile_scrape_error{}')?.value, 1, 'scrape_error 1 for the two bad files');

  for (const f of Object.keys(BAD)) fs.rmSync(path.join(dir, f));
  await new Promise((r) => setTimeout(r, 700)); // past the agent's sample age
  const [a2, n2] = [await scrape(agent), await scrape(ne)];
  t.equal(a2.series.get('node_textfile_scrape_error{}')?.value, 0, 'no error once the bad files are gone');
  t.same(only(a2, (x) => x.startsWith('node_textfile_')), only(n2, (x) => x.startsWith('node_textfile_')), 'and node_exporter agrees');
});
