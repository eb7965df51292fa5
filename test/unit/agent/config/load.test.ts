import t from 'tap';
import { ConfigError, loadConfig, SETTINGS, type ConfigSources } from '../../../../agent/config/load.js';

const KEY = 'k'.repeat(40);
const files = (map: Record<string, string>): ConfigSources['readFile'] => (p) => {
  if (p in map) return map[p]!;
  throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
};
const src = (over: Partial<ConfigSources> = {}): ConfigSources => ({ argv: [], env: {}, readFile: files({}), hostname: 'pi-1', ...over });

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('defaults apply when nothing is configured, and the result is frozen', async (t) => {
  const { config, file } = loadConfig(src());
  t.equal(config.http.port, 7070);
  t.equal(config.http.host, '0.0.0.0');
  t.equal(config.nodeName, 'pi-1');
  t.equal(config.formation.expect, 1);
  t.same(config.discovery.seeds, []);
  t.equal(file, null, 'a missing default config file is not an error');
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.http));
  t.throws(() => { (config.http as { port: number }).port = 1; });
});

t.test('layers: file < env < flags', async (t) => {
  const readFile = files({ '/etc/piswarm/config.json': JSON.stringify({ http: { port: 8000, bodyLimit: 4096 }, log: { level: 'warn' }, clusterName: 'lab' }) });
  const { config, file } = loadConfig(src({ readFile, env: { PISWARM_HTTP_PORT: '8001', PISWARM_LOG_LEVEL: 'debug' }, argv: ['--port', '8002'] }));
  t.equal(file, '/etc/piswarm/config.json');
  t.equal(config.http.port, 8002, 'flag wins');
  t.equal(config.log.level, 'debug', 'env beats file');
  t.equal(config.http.bodyLimit, 4096, 'file beats default');
  t.equal(config.clusterName, 'lab');
});

t.test('env and flags are coerced by the schema type', async (t) => {
  const { config } = loadConfig(src({
    env: { PISWARM_DISCOVERY_MDNS: 'false', PISWARM_DISCOVERY_SEEDS: '10.0.0.2, 10.0.0.3:7070' },
    argv: ['--formation-expect=3', '--formation-enabled', '--http-host', '127.0.0.1'],
  }));
  t.equal(config.discovery.mdns, false);
  t.same(config.discovery.seeds, ['10.0.0.2', '10.0.0.3:7070']);
  t.equal(config.formation.expect, 3);
  t.equal(config.formation.enabled, true);
  t.equal(config.http.host, '127.0.0.1');
});

t.test('every invalid field is reported at once, with its path and source', async (t) => {
  const readFile = files({ '/x.json': JSON.stringify({ http: { port: 70000 }, bogus: 1, log: { level: 'loud', extra: true } }) });
  const issues = issuesOf(() => loadConfig(src({ readFile, argv: ['--config', '/x.json', '--formation-expect', 'many'], env: { PISWARM_HTTP_BODY_LIMIT: '12', PISWARM_TYPO: '1' } })));
  const paths = issues.map((i) => i.path).sort();
  t.ok(paths.includes('http.port'), 'port out of range');
  t.ok(paths.includes('bogus'), 'unknown top-level key');
  t.ok(paths.includes('log.extra'), 'unknown nested key');
  t.ok(paths.includes('log.level'), 'bad enum');
  t.ok(paths.includes('formation.expect'), 'flag not a number');
  t.ok(paths.includes('PISWARM_TYPO'), 'unknown env setting');
  t.equal(issues.find((i) => i.path === 'formation.expect')?.source, 'flag');
  t.equal(issues.find((i) => i.path === 'PISWARM_TYPO')?.source, 'env');
});

t.test('each issue names the layer its value came from', async (t) => {
  const readFile = files({ '/x.json': JSON.stringify({ http: { bogus: 1 }, log: { level: 'loud' }, health: { temperatureWarnCelsius: 'hot' } }) });
  const issues = issuesOf(() => loadConfig(src({ readFile, argv: ['--config', '/x.json', '--http-port', '70000'], env: { PISWARM_FORMATION_EXPECT: '0' } })));
  const source = (p: string) => issues.find((i) => i.path === p)?.source;
  t.equal(source('http.bogus'), 'file', 'an unknown key from the file');
  t.equal(source('log.level'), 'file', 'a bad value from the file');
  t.equal(source('health.temperatureWarnCelsius'), 'file');
  t.equal(source('http.port'), 'flag', 'coerced from a flag, rejected by the schema');
  t.equal(source('formation.expect'), 'env');
  t.notOk(issues.some((i) => i.path === 'health.temperatureFailCelsius'), 'no cross-field check on a field the schema already rejected');
});

t.test('the key-file and cross-field checks report alongside schema errors, not after them', async (t) => {
  const issues = issuesOf(() => loadConfig(src({ argv: ['--http-port', 'x', '--cluster-key-file', '/nonexistent', '--health-disk-free-fail-percent', '50'] })));
  t.same(issues.map((i) => `${i.path} (${i.source})`).sort(), ['clusterKeyFile (flag)', 'health.diskFreeFailPercent (flag)', 'http.port (flag)']);
  t.match(issues.find((i) => i.path === 'clusterKeyFile')?.message, /ENOENT/);
});

t.test("the build and simulator scripts' variables are not settings", async (t) => {
  const env = { PISWARM_SIM_BASE: 'debian:bookworm', PISWARM_BASE_IMAGE: 'x', PISWARM_DOCKERD_LOG: '/tmp/d.log', PISWARM_DOCKERD_WAIT_SECONDS: '60' };
  t.doesNotThrow(() => loadConfig(src({ env })));
  const issues = issuesOf(() => loadConfig(src({ env: { ...env, PISWARM_SIM_BASEX: '1' } })));
  t.same(issues.map((i) => i.path), ['PISWARM_SIM_BASEX'], 'a near miss is still an unknown setting');
});

t.test('bad JSON and an unreadable explicit file are config errors; a missing default file is not', async (t) => {
  const bad = issuesOf(() => loadConfig(src({ readFile: files({ '/etc/piswarm/config.json': '{ nope' }) })));
  t.match(bad[0]?.message, /not valid JSON/);
  const missing = issuesOf(() => loadConfig(src({ env: { PISWARM_CONFIG: '/nowhere.json' } })));
  t.match(missing[0]?.message, /cannot read \/nowhere.json: ENOENT/);
  const arr = issuesOf(() => loadConfig(src({ readFile: files({ '/etc/piswarm/config.json': '[1,2]' }) })));
  t.match(arr[0]?.message, /JSON object/);
});

t.test('the cluster key file is read, and a short key is refused without echoing it', async (t) => {
  const { config } = loadConfig(src({ readFile: files({ '/etc/piswarm/cluster.key': `${KEY}\n` }), env: { PISWARM_CLUSTER_KEY_FILE: '/etc/piswarm/cluster.key' } }));
  t.equal(config.clusterKey, KEY);
  const issues = issuesOf(() => loadConfig(src({ readFile: files({ '/k': 'short-secret' }), argv: ['--cluster-key-file', '/k'] })));
  t.equal(issues[0]?.path, 'clusterKeyFile');
  t.notMatch(JSON.stringify(issues), /short-secret/);
  const direct = issuesOf(() => loadConfig(src({ env: { PISWARM_CLUSTER_KEY: 'tiny' } })));
  t.equal(direct[0]?.path, 'clusterKey');
});

t.test('cross-field rules', async (t) => {
  const issues = issuesOf(() => loadConfig(src({ argv: ['--health-disk-free-fail-percent', '50', '--health-disk-free-warn-percent', '10'] })));
  t.equal(issues[0]?.path, 'health.diskFreeFailPercent');
});

t.test('non-setting words are left for the command', async (t) => {
  const { rest } = loadConfig(src({ argv: ['--json', 'extra', '--port', '9000'] }));
  t.same(rest, ['--json', 'extra']);
});

t.test('every setting has a distinct env name and flag and a description', async (t) => {
  t.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length);
  t.equal(new Set(SETTINGS.map((s) => s.flag)).size, SETTINGS.length);
  for (const s of SETTINGS) t.ok((s.schema as { description?: string }).description, `${s.path.join('.')} is documented`);
});
