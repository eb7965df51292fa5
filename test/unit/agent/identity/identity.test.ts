import t from 'tap';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateIdentity, NODE_ID_PATTERN } from '../../../../agent/identity/identity.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';

t.test('identity is generated once and survives a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-id-'));
  const a = loadOrCreateIdentity(join(dir, 'state'), 'pi1');
  t.match(a.nodeId, NODE_ID_PATTERN);
  const b = loadOrCreateIdentity(join(dir, 'state'), 'pi1');
  t.equal(b.nodeId, a.nodeId);
  t.equal(statSync(join(dir, 'state', 'identity.json')).mode & 0o777, 0o600);
  const c = loadOrCreateIdentity(mkdtempSync(join(tmpdir(), 'piswarm-id-')), 'pi2');
  t.not(c.nodeId, a.nodeId);
});

t.test('a corrupt identity file is a coded error, not a new identity', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-id-'));
  writeFileSync(join(dir, 'identity.json'), '{"nodeId": 42}');
  t.throws(() => loadOrCreateIdentity(dir, 'pi'), { name: 'PiswarmError', code: 'PISWARM_ERR_CONFIG_FILE' });
  writeFileSync(join(dir, 'identity.json'), '{not json');
  t.throws(() => loadOrCreateIdentity(dir, 'pi'), { name: 'PiswarmError', code: 'PISWARM_ERR_CONFIG_FILE' });
  t.equal(readFileSync(join(dir, 'identity.json'), 'utf8'), '{not json', 'left untouched');
});

t.test('derived keys: deterministic, distinct per use, cluster id reveals nothing', async (t) => {
  const k1 = deriveClusterKeys('x'.repeat(32));
  const k2 = deriveClusterKeys('x'.repeat(32));
  const k3 = deriveClusterKeys('y'.repeat(32));
  t.equal(k1.clusterId, k2.clusterId);
  t.not(k1.clusterId, k3.clusterId);
  t.equal(k1.clusterId.length, 11);
  t.notOk(k1.advertKey.equals(k1.authKey));
  t.notOk(k1.authKey.equals(k1.grantKey));
});
