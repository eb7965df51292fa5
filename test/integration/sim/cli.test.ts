/**
 * The simulator's CLI (scripts/sim/main.ts) as a user runs it: the compiled
 * entry point `npm run sim` invokes, as a child process, on real Docker.
 * Argument errors, what `up` prints, the `status --json` contract, exec,
 * logs and logs -f, stop/start, `up` on an existing cluster, and `down` leaving nothing
 * of the cluster behind (containers, volumes, network, .sim/<name>/).
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL_CLUSTER } from '../../../scripts/sim/cluster.js';
import { run, type RunResult } from '../../../scripts/sim/run.js';
import { dumpJournals, httpGet, sim, skipReason, uniqueName } from '../helpers/cluster.js';

const skip = await skipReason();
const root = sim.repoRoot();
// What package.json's "sim" script runs.
const MAIN = join(root, 'dist/scripts/sim/main.js');
const USAGE = 'usage: npm run sim -- <verb> [options]';
const EX_USAGE = 64;

const cli = (args: string[], timeoutMs = 400_000): Promise<RunResult> => run(process.execPath, [MAIN, ...args], { cwd: root, timeoutMs });
const show = (r: RunResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

const labelled = async (cluster: string) => {
  const filter = `label=${LABEL_CLUSTER}=${cluster}`;
  const ls = async (args: string[]) => (await run('docker', [...args, '--filter', filter])).stdout.split('\n').filter(Boolean);
  return { containers: await ls(['ps', '-aq']), volumes: await ls(['volume', 'ls', '-q']), networks: await ls(['network', 'ls', '-q']) };
};
const NOTHING = { containers: [], volumes: [], networks: [] };

/** The fields `status --json` promises, and nothing else. */
const CONTRACT = ['apiUrl', 'cluster', 'connected', 'containerId', 'engine', 'ip', 'name', 'os', 'running'];

async function statusJson(t: Test, name: string): Promise<sim.NodeStatus[]> {
  const r = await cli(['status', '--json', '--name', name]);
  t.equal(r.code, 0, 'status --json exits 0');
  return JSON.parse(r.stdout) as sim.NodeStatus[];
}

t.test('the sim CLI, run as `npm run sim` runs it', { skip, timeout: 900_000 }, async (t) => {
  const name = uniqueName('it-cli');
  const dir = join(root, '.sim', name);
  // Another cluster's host-side state, which `down` of ours must leave alone.
  const other = uniqueName('it-clikeep');
  t.teardown(async () => {
    if (!t.passing()) await dumpJournals(t, { name });
    await sim.down({ name });
    await sim.down({ name: other });
  });

  await t.test('bad arguments: exit 64 with a clear message and the usage, and create nothing', async (t) => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate', '--name', name], /unknown verb "frobnicate"/],
      [['stop', '--name', name], /stop needs a NODE/],
      [['exec', '--name', name], /exec needs a NODE/],
      [['logs', '--name', name], /logs needs a NODE/],
      [['up', '--name', name], /up needs --nodes N/],
      [['up', '--nodes', 'abc', '--name', name], /--nodes wants a whole number of at least 1, got "abc"/],
      [['up', '--nodes', '0', '--name', name], /--nodes wants a whole number of at least 1, got "0"/],
      [['up', '--nodes', '2', '--bogus', '--name', name], /unknown option --bogus/],
      [['up', '--nodes', '2', '--env', 'NOEQUALS', '--name', name], /--env wants KEY=VALUE, got "NOEQUALS"/],
      [['up', '--nodes', '1', '--name'], /--name needs a value/],
      [['up', '--nodes', '1', '--os', 'buster', '--name', name], /unknown simulated OS "buster": use one of trixie, bookworm/],
      [['logs', `${name}-1`, '-n', 'many'], /-n wants a whole number of at least 1, got "many"/],
      [['stop', `${name}-1`, `${name}-2`], /unexpected argument/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args, 60_000);
      const what = `sim ${args.join(' ')}`;
      t.equal(r.code, EX_USAGE, `${what}: exit ${EX_USAGE}`);
      t.match(r.stderr, message, `${what}: says why`);
      t.ok(r.stderr.includes(USAGE), `${what}: prints the usage`);
      t.equal(r.stdout, '', `${what}: nothing on stdout`);
    }
    // Not a parse error but the same exit code: the name is checked before anything is made.
    const bad = await cli(['up', '--nodes', '1', '--name', 'Not_A_Name'], 60_000);
    t.equal(bad.code, EX_USAGE, 'an invalid cluster name: exit 64');
    t.match(bad.stderr, /cluster name "Not_A_Name" must match/, 'says what a name may be');
    t.equal(bad.stdout, '', 'nothing on stdout');
    t.notOk(existsSync(join(root, '.sim', 'Not_A_Name')), 'no .sim dir for it');
    const none = await cli([], 60_000);
    t.equal(none.code, EX_USAGE, 'no verb at all: exit 64');
    t.ok(none.stdout.startsWith(USAGE), 'and the usage');
    t.same(await labelled(name), NOTHING, 'no container, volume or network was created');
    t.notOk(existsSync(dir), `no ${join('.sim', name)}/ was created`);
  });

  const nodes = [`${name}-1`, `${name}-2`];

  await t.test('up --nodes 2 boots two Pis, prints how to reach each, and waits for one swarm', async (t) => {
    const r = await cli(['up', '--nodes', '2', '--name', name]);
    t.equal(r.code, 0, 'exit 0');
    if (r.code !== 0) t.comment(show(r));
    t.match(r.stderr, new RegExp(`sim: cluster ${name}: 2 node\\(s\\) on piswarm-sim-${name} \\(10\\.231\\.\\d+\\.0/24\\); 2 booted in [0-9.]+s`), 'says what it booted');
    t.match(r.stderr, /one swarm, 2 node\(s\) Ready, [0-9.]+s after power-on/, 'says when the swarm held both');
    t.notOk(/warning/.test(r.stderr), 'no warning on a fresh cluster');
    const truth = await sim.status({ name });
    t.same(truth.map((n) => n.name), nodes, 'the library sees the two nodes');
    for (const n of truth) {
      const id = (await run('docker', ['inspect', '-f', '{{.Id}}', n.name])).stdout.trim();
      t.ok(r.stdout.includes(`${n.name}  ${n.ip}  running  container ${id.slice(0, 12)}  ${n.os}, Docker ${n.engine}\n`), `${n.name}: name, IP, state, container id, OS and engine on one line`);
      const block = r.stdout.slice(r.stdout.indexOf(`${n.name}  `));
      const health = /^ {2}health: {2}(http:\/\/\S+\/health)$/m.exec(block)?.[1];
      const metrics = /^ {2}metrics: (http:\/\/\S+\/metrics)$/m.exec(block)?.[1];
      t.equal(health, `http://${n.ip}:7070/health`, `${n.name}: its /health URL`);
      t.equal(metrics, `http://${n.ip}:7070/metrics`, `${n.name}: its /metrics URL`);
      t.ok([200, 503].includes((await httpGet(health ?? 'http://0.0.0.0:1/')).status), `${n.name}: the printed /health URL answers from the host`);
      const m = await httpGet(metrics ?? 'http://0.0.0.0:1/');
      t.equal(m.status, 200, `${n.name}: the printed /metrics URL answers`);
      t.match(m.text, /^piswarm_/m, `${n.name}: with piswarm metrics`);
      t.match(block, new RegExp(`^ {2}shell: {3}npm run sim -- exec ${n.name} -- bash .*docker exec -it ${n.name} bash`, 'm'), `${n.name}: shell hint`);
      t.match(block, new RegExp(`^ {2}journal: npm run sim -- logs ${n.name} -f .*docker exec ${n.name} journalctl -u piswarm -f`, 'm'), `${n.name}: journal hint`);
    }
    // `docker node ls` as a manager prints it, then where to see the formation.
    t.match(r.stdout, /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS/m, 'prints docker node ls');
    for (const n of nodes) t.match(r.stdout, new RegExp(`\\s${n}\\s+Ready\\s+Active`), `${n} Ready in it`);
    t.match(r.stdout, /Leader/, 'with a leader');
    t.match(r.stdout, new RegExp(`formation: curl -s http://${truth[0]!.ip.replace(/\./g, '\\.')}:7070/v1/formation`), 'and where to see the formation');
    t.ok(existsSync(join(dir, 'cluster.key')), `the cluster key is in ${join('.sim', name, 'cluster.key')}`);
  });

  await t.test('status --json speaks the documented contract; status prints the container id too', async (t) => {
    const json = await statusJson(t, name);
    t.equal(json.length, 2, 'two nodes');
    for (const [i, n] of json.entries()) {
      t.same(Object.keys(n).sort(), CONTRACT, `${n.name}: exactly the contract's fields`);
      const inspect = JSON.parse((await run('docker', ['inspect', nodes[i]!])).stdout)[0] as { Id: string; State: { Running: boolean }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
      const ip = inspect.NetworkSettings.Networks[`piswarm-sim-${name}`]?.IPAddress;
      t.match(n, { name: nodes[i], cluster: name, containerId: inspect.Id, ip, apiUrl: `http://${ip}:7070`, running: true, connected: true }, `${n.name}: the values docker reports`);
      t.match(n.containerId, /^[0-9a-f]{64}$/, `${n.name}: the full container id`);
      const engine = (await run('docker', ['exec', nodes[i]!, 'docker', 'version', '--format', '{{.Server.Version}}'])).stdout.trim();
      const osRelease = (await run('docker', ['exec', nodes[i]!, 'sh', '-c', '. /etc/os-release; echo $VERSION_CODENAME'])).stdout.trim();
      t.match(n, { os: osRelease, engine }, `${n.name}: the OS (${osRelease}) and the engine (${engine}) the node runs`);
    }
    const text = await cli(['status', '--name', name]);
    t.equal(text.code, 0, 'status exits 0');
    for (const n of json) t.ok(text.stdout.includes(`${n.name}  ${n.ip}  running  container ${n.containerId.slice(0, 12)}  ${n.os}, Docker ${n.engine}\n`), `${n.name}: text status names its container, OS and engine`);
    // The README's spelling of the same command.
    const npm = await run('npm', ['run', '--silent', 'sim', '--', 'status', '--json', '--name', name], { cwd: root, timeoutMs: 60_000 });
    t.equal(npm.code, 0, 'npm run sim -- status --json exits 0');
    t.same(JSON.parse(npm.stdout), json, 'and prints the same JSON');
    const empty = await cli(['status', '--json', '--name', uniqueName('it-clinone')]);
    t.equal(empty.code, 0, 'status of a cluster with no nodes exits 0');
    t.same(JSON.parse(empty.stdout), [], 'and prints an empty JSON array');
  });

  await t.test('exec runs a command on a node and passes its exit code through', async (t) => {
    const r = await cli(['exec', nodes[0]!, '--', 'hostname']);
    t.equal(r.code, 0, 'exit 0');
    t.equal(r.stdout, `${nodes[0]}\n`, 'prints the node\'s hostname');
    const fail = await cli(['exec', nodes[1]!, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    t.equal(fail.code, 7, 'a failing command\'s exit code comes back');
    t.equal(fail.stdout, 'out\n');
    t.equal(fail.stderr, 'err\n');
    const nocmd = await cli(['exec', nodes[0]!]);
    t.equal(nocmd.code, EX_USAGE, 'exec without a command: exit 64');
    t.match(nocmd.stderr, /exec needs a command after --/);
    const nonode = await cli(['exec', `${name}-9`, '--name', name, '--', 'true']);
    t.equal(nonode.code, EX_USAGE, 'exec on a node that does not exist: exit 64');
    t.match(nonode.stderr, new RegExp(`no node ${name}-9`));
  });

  await t.test('exec in a terminal hands the node a terminal: the README\'s `exec NODE -- bash` is an interactive shell', async (t) => {
    // script(1) (util-linux) runs the CLI on a pseudo-terminal, as a user's terminal would.
    const script = await run('sh', ['-c', 'command -v script']);
    if (script.code !== 0) {
      t.fail('script(1) from util-linux is missing: no pseudo-terminal to run exec on');
      return;
    }
    const inTty = (cmd: string, input = '') => run('script', ['-qec', `${process.execPath} ${MAIN} ${cmd}`, '/dev/null'], { cwd: root, input, timeoutMs: 60_000 });
    const tty = await inTty(`exec ${nodes[0]} -- tty`);
    t.equal(tty.code, 0, show(tty));
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'the command inside the node has a terminal');
    const shell = await inTty(`exec ${nodes[0]} -- bash`, 'hostname\nexit 3\n');
    t.equal(shell.code, 3, 'the shell\'s exit code comes back');
    t.match(shell.stdout, new RegExp(`root@${nodes[0]}:/# `), 'a prompt: bash is interactive');
    const plainText = shell.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // bash's bracketed-paste switches
    t.match(plainText, new RegExp(`[\r\n]${nodes[0]}\r?\n`), 'and runs what is typed');
    const plain = await cli(['exec', nodes[0]!, '--', 'tty']);
    t.equal(plain.code, 1, 'without a terminal, none is faked');
    t.equal(plain.stdout, 'not a tty\n');
  });

  await t.test('logs shows the agent\'s journal (the node name implies the cluster)', async (t) => {
    const r = await cli(['logs', nodes[1]!]);
    t.equal(r.code, 0, 'exit 0');
    t.match(r.stdout, /"msg":"agent ready"/, 'the agent\'s own lines');
    t.match(r.stdout, /formation phase changed/, 'formation lines');
    t.notOk(r.stdout.includes('SWMTKN'), 'no join token');
    const key = (await readFile(join(dir, 'cluster.key'), 'utf8')).trim();
    t.notOk(r.stdout.includes(key), 'no cluster key');
    const few = await cli(['logs', nodes[1]!, '-n', '3']);
    t.equal(few.code, 0);
    t.ok(few.stdout.split('\n').filter((l) => l && !l.startsWith('-- ')).length <= 3, '-n 3: at most 3 lines');
  });

  await t.test('logs -f follows the journal: a restart of the agent shows up while it runs, Ctrl-C ends it', async (t) => {
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    const child = spawn(process.execPath, [MAIN, 'logs', nodes[1]!, '-f', '-n', '1'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } });
    await sim.waitFor(async () => out.length > 0, { timeoutMs: 30_000, what: 'the last journal line' });
    const before = out;
    t.notMatch(before, /"msg":"stopping"/, 'only the last line at first');
    await sim.exec({ name }, nodes[1]!, ['systemctl', 'restart', 'piswarm']);
    await sim.waitFor(async () => /"msg":"agent ready"/.test(out.slice(before.length)), { timeoutMs: 60_000, what: 'the restarted agent\'s "agent ready" in the followed output' });
    t.match(out.slice(before.length), /"msg":"stopping"[\s\S]*"msg":"stopped"[\s\S]*"msg":"agent ready"/, 'the old agent stopping, then the new one ready, as they happened');
    process.kill(-child.pid!, 'SIGINT');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
    t.not(code, 'still running', 'Ctrl-C ends it within 10 s');
    // The next subtests need the agent answering again.
    const api = (await sim.status({ name })).find((n) => n.name === nodes[1])!.apiUrl;
    await sim.waitFor(async () => [200, 503].includes((await httpGet(`${api}/health`, 1000)).status), { timeoutMs: 60_000, what: `${nodes[1]} answering after the restart` });
  });

  await t.test('stop and start show in status', async (t) => {
    const [first, second] = await sim.status({ name });
    const stop = await cli(['stop', nodes[1]!]);
    t.equal(stop.code, 0, 'stop exits 0');
    let json = await statusJson(t, name);
    t.same(json.map((n) => n.running), [true, false], 'status --json: the second is stopped, the first runs');
    const text = await cli(['status', '--name', name]);
    t.match(text.stdout, new RegExp(`^${nodes[1]}  ${second!.ip.replace(/\./g, '\\.')}  stopped  container `, 'm'), 'status says stopped');
    t.equal((await httpGet(`${second!.apiUrl}/health`, 1000)).status, 0, 'and it does not answer');
    const start = await cli(['start', nodes[1]!]);
    t.equal(start.code, 0, 'start exits 0 once the agent answers');
    json = await statusJson(t, name);
    t.same(json.map((n) => n.running), [true, true], 'status --json: both run');
    t.equal(json[1]!.containerId, second!.containerId, 'the same container (powered on, not replaced)');
    t.equal(json[0]!.containerId, first!.containerId);
    t.ok([200, 503].includes((await httpGet(`${second!.apiUrl}/health`)).status), 'and it answers again');
  });

  await t.test('up on an existing cluster says --cluster-key and --env do not reach existing nodes', async (t) => {
    const key = (await readFile(join(dir, 'cluster.key'), 'utf8')).trim();
    const envOf = async (node: string) => (await sim.exec({ name }, node, ['cat', '/etc/piswarm/env'])).stdout;
    const keyOf = async (node: string) => (await sim.exec({ name }, node, ['cat', '/etc/piswarm/cluster.key'])).stdout.trim();

    const again = await cli(['up', '--nodes', '2', '--name', name, '--cluster-key', 'another-key-0123456789abcdef', '--env', 'PISWARM_LOG_LEVEL=debug']);
    t.equal(again.code, 0, 'exit 0 (the cluster is up and formed)');
    if (again.code !== 0) t.comment(show(again));
    t.match(again.stderr, `sim: warning: --cluster-key, --env PISWARM_LOG_LEVEL ignored for the 2 existing node(s) (${nodes.join(', ')})`, 'a warning names the ignored options and the nodes');
    t.match(again.stderr, /no node is created, so nothing gets them/, 'and that no node gets them');
    t.match(again.stderr, /`down` the cluster and `up` it again/, 'and how to change them');
    t.same((await sim.status({ name })).map((n) => n.name), nodes, 'no node was added');
    for (const n of nodes) {
      t.equal(await keyOf(n), key, `${n} keeps the cluster key`);
      t.notMatch(await envOf(n), /PISWARM_LOG_LEVEL/, `${n} env unchanged`);
    }

    const grow = await cli(['up', '--nodes', '3', '--no-wait', '--name', name, '--env', 'PISWARM_LOG_LEVEL=debug']);
    t.equal(grow.code, 0, 'up --nodes 3 --no-wait exits 0');
    if (grow.code !== 0) t.comment(show(grow));
    t.match(grow.stderr, `sim: warning: --env PISWARM_LOG_LEVEL ignored for the 2 existing node(s) (${nodes.join(', ')})`, 'warns about the existing two');
    t.match(grow.stderr, /only the 1 new node\(s\) get them/, 'and says the new node gets them');
    t.notMatch(grow.stdout, /^ID\s+HOSTNAME/m, '--no-wait: no swarm watched');
    const third = `${name}-3`;
    t.ok(grow.stdout.includes(`${third}  `), 'prints the new node');
    t.match(await envOf(third), /^PISWARM_LOG_LEVEL="debug"$/m, 'the new node got --env');
    t.equal(await keyOf(third), key, 'and the cluster\'s own key');
    t.notMatch(await envOf(nodes[0]!), /PISWARM_LOG_LEVEL/, 'the first node did not');
    nodes.push(third);
  });

  await t.test('down removes every container, volume and network of the cluster and its .sim dir, and nothing else', async (t) => {
    await sim.clusterKey({ name: other });
    const otherDir = join(root, '.sim', other);
    t.ok(existsSync(join(otherDir, 'cluster.key')), 'another cluster\'s state exists');
    t.ok(existsSync(dir), `${join('.sim', name)}/ exists before down`);
    const r = await cli(['down', '--name', name]);
    t.equal(r.code, 0, 'exit 0');
    t.match(r.stderr, /removed 4 container\(s\), 3 volume\(s\), 1 network\(s\)/, 'says what it removed (three nodes and the registry node)');
    t.match(r.stderr, `removed ${join('.sim', name)}/`, 'including its state dir');
    t.same(await labelled(name), NOTHING, 'no container, volume or network with the cluster label is left');
    t.notOk(existsSync(dir), `${join('.sim', name)}/ is gone`);
    t.ok(existsSync(join(otherDir, 'cluster.key')), 'the other cluster\'s .sim dir is untouched');
    const twice = await cli(['down', '--name', name]);
    t.equal(twice.code, 0, 'a second down exits 0');
    t.match(twice.stderr, /removed 0 container\(s\), 0 volume\(s\), 0 network\(s\)/, 'and removes nothing');
    const status = await statusJson(t, name);
    t.same(status, [], 'status --json: no nodes');
    // sim.down of the other cluster (teardown) removes its dir: check that here, with nothing else of it on the engine.
    await sim.down({ name: other });
    t.notOk(existsSync(otherDir), 'a cluster that only has a .sim dir loses it to its own down');
    await rm(otherDir, { recursive: true, force: true });
  });
});
