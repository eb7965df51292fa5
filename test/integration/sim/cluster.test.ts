/**
 * The simulated cluster harness itself, on real Docker: several nodes, each
 * with its agent under systemd; power and cable operations; two clusters
 * side by side; `down` removes exactly what the cluster created.
 */
import t from 'tap';
import { run } from '../../../scripts/sim/run.js';
import { LABEL_CLUSTER } from '../../../scripts/sim/cluster.js';
import { httpGet, sim, skipReason, startCluster, unitProps, uniqueName } from '../helpers/cluster.js';

const skip = await skipReason();

const labelled = async (cluster: string) => {
  const filter = `label=${LABEL_CLUSTER}=${cluster}`;
  const ls = async (args: string[]) => (await run('docker', [...args, '--filter', filter])).stdout.split('\n').filter(Boolean);
  return { containers: await ls(['ps', '-aq']), volumes: await ls(['volume', 'ls', '-q']), networks: await ls(['network', 'ls', '-q']) };
};

t.test('a simulated cluster of two nodes beside a second cluster', { skip, timeout: 600_000 }, async (t) => {
  const a = await startCluster(t, { prefix: 'it-cla', nodes: 2 });
  const b = await startCluster(t, { prefix: 'it-clb', nodes: 1, env: { PISWARM_LOG_LEVEL: 'debug' } });

  await t.test('status speaks the JSON contract', async (t) => {
    const nodes = await sim.status(a.ref);
    t.equal(nodes.length, 2);
    for (const n of nodes) {
      t.match(n, { name: /^it-cla-[0-9a-f]{6}-\d+$/, cluster: a.ref.name, containerId: /^[0-9a-f]{64}$/, ip: /^10\.231\.\d+\.\d+$/, running: true, connected: true });
      t.equal(n.apiUrl, `http://${n.ip}:7070`);
    }
    const [nb] = await sim.status(b.ref);
    t.not(nb!.ip.split('.')[2], nodes[0]!.ip.split('.')[2], 'each cluster has a subnet of its own');
  });

  await t.test('every node runs its agent under systemd and answers from the host', async (t) => {
    for (const n of [...a.nodes, ...b.nodes]) {
      t.match(await unitProps(a.ref.name === n.cluster ? a.ref : b.ref, n.name, 'piswarm', ['ActiveState', 'SubState']), { ActiveState: 'active', SubState: 'running' }, n.name);
      t.ok([200, 503].includes((await httpGet(`${n.apiUrl}/health`)).status), `${n.name} /health`);
      t.equal((await httpGet(`${n.apiUrl}/metrics`)).status, 200, `${n.name} /metrics`);
      const journal = await sim.logs(n.cluster === a.ref.name ? a.ref : b.ref, n.name);
      t.match(journal, /"msg":"agent ready"/, `${n.name} journal has the agent's lines`);
    }
  });

  await t.test('per-node env reaches the agent through EnvironmentFile=', async (t) => {
    const [n] = b.nodes;
    const pid = (await unitProps(b.ref, n!.name, 'piswarm', ['MainPID'])).MainPID!;
    const environ = await sim.exec(b.ref, n!.name, ['cat', `/proc/${pid}/environ`]);
    t.ok(environ.stdout.split('\0').includes('PISWARM_LOG_LEVEL=debug'), 'the agent process has PISWARM_LOG_LEVEL=debug');
  });

  await t.test('reboot, power cut and a pulled cable', async (t) => {
    const n = a.nodes[1]!;
    // PID 1's start on the host-shared monotonic clock: it moves only when the node boots again.
    const booted = async () => Number((await sim.exec(a.ref, n.name, ['systemctl', 'show', '-p', 'UserspaceTimestampMonotonic', '--value'])).stdout);
    const before = await booted();
    await sim.restart(a.ref, n.name);
    t.ok((await booted()) > before, 'the node booted again');
    t.match(await unitProps(a.ref, n.name, 'piswarm', ['ActiveState']), { ActiveState: 'active' }, 'agent back after reboot');

    await sim.kill(a.ref, n.name);
    t.equal((await sim.status(a.ref)).find((x) => x.name === n.name)?.running, false, 'killed node is off');
    t.equal((await httpGet(`${n.apiUrl}/health`, 1000)).status, 0, 'and does not answer');
    await sim.start(a.ref, n.name);
    t.ok([200, 503].includes((await httpGet(`${n.apiUrl}/health`)).status), 'agent back after power cut');

    await sim.disconnect(a.ref, n.name);
    t.equal((await httpGet(`${n.apiUrl}/health`, 1000)).status, 0, 'unreachable with the cable pulled');
    await sim.connect(a.ref, n.name);
    await sim.waitFor(async () => (await httpGet(`${n.apiUrl}/health`, 1000)).status > 0, { timeoutMs: 20_000, what: '/health after reconnect' });
    t.equal((await sim.status(a.ref)).find((x) => x.name === n.name)?.ip, n.ip, 'same address after reconnect');
  });

  await t.test('down removes the cluster and nothing else', async (t) => {
    // Something of the user's own that must survive, labelled like ours but for another cluster.
    const keep = uniqueName('it-keep');
    await run('docker', ['volume', 'create', '--label', `${LABEL_CLUSTER}=${keep}`, keep]);
    t.teardown(() => run('docker', ['volume', 'rm', keep]));
    const removed = await sim.down(a.ref);
    t.same(removed, { containers: 3, volumes: 2, networks: 1 }, 'two nodes and the registry node');
    t.same(await labelled(a.ref.name!), { containers: [], volumes: [], networks: [] }, 'no containers, volumes or networks left');
    t.equal((await labelled(keep)).volumes.length, 1, 'an unrelated volume survives');
    t.equal((await sim.status(b.ref)).filter((n) => n.running).length, 1, 'the other cluster still runs');
    t.ok([200, 503].includes((await httpGet(`${b.nodes[0]!.apiUrl}/health`)).status), 'and answers');
  });
});
