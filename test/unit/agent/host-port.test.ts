import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createHostPort } from '../../../agent/host-port.js';
import { STATE_FILE, loadDiskBenchResult, saveDiskBenchResult } from '../../../agent/disk-bench/disk-bench.js';
import { memoryLogger } from '../../helpers/fakes.js';
import { testConfig } from './formation/helpers.js';

// The host port samples this machine's real /proc and /sys: no fakes here.

t.test('an empty or corrupt disk-bench.json (a power cut mid-write) costs the figure, not the start', async (t) => {
  for (const content of ['', '{"device":', '[]']) {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-hostport-'));
    t.teardown(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(stateDir, STATE_FILE), content);
    const { log, lines } = memoryLogger();
    const port = createHostPort(testConfig({ stateDir }), log, '0.0.0-test');
    await port.start();
    try {
      t.ok(lines().some((l) => l.level === 40 && /disk benchmark result unreadable/.test(String(l.msg))), `warned for ${JSON.stringify(content)}`);
      t.equal(port.facts().diskBps, undefined, 'no figure from a broken file');
      const text = port.render([]);
      t.match(text, /piswarm_collector_success\{collector="disk_bench"\} 0/, 'the collector reports the failure in /metrics');
      t.match(text, /node_cpu_seconds_total/, 'the other collectors still sample');
    } finally {
      await port.stop();
    }
  }
});

t.test('a saved result is durable and read back at start', async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-hostport-'));
  t.teardown(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const result = { device: '/dev/sda', bytes: 4194304, seconds: 0.5, bytesPerSecond: 8388608, blockSize: 4194304, at: '2025-06-01T12:00:00.000Z' };
  saveDiskBenchResult(stateDir, result);
  t.same(fs.readdirSync(stateDir), [STATE_FILE], 'no temporary file left behind');
  t.equal((fs.statSync(path.join(stateDir, STATE_FILE)).mode & 0o777).toString(8), '644');
  t.same(loadDiskBenchResult(stateDir), result);
  const { log } = memoryLogger();
  const port = createHostPort(testConfig({ stateDir }), log, '0.0.0-test');
  await port.start();
  try {
    t.equal(port.facts().diskBps, 8388608);
  } finally {
    await port.stop();
  }
});
