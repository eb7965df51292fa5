/**
 * A DHCP change on a simulated Pi: the worker's address moves while it is in
 * the swarm. The agent reports it (/health net:address, /metrics, journal)
 * and changes nothing; then the operator does what the warning says
 * (docker swarm leave, restart piswarm) and the node is back in the swarm
 * with its new address, with nobody typing a join command.
 */
import t from 'tap';
import { REGISTRY_OCTET } from '../../../scripts/sim/registry.js';
import { httpGet, sim, skipReason, startCluster, until } from '../helpers/cluster.js';

const skip = await skipReason();
const ENV = {
  PISWARM_FORMATION_HOLD_OFF_MS: '2000',
  PISWARM_DISCOVERY_CONFIRM_INTERVAL_MS: '1000',
  PISWARM_FORMATION_EXPECT: '2',
  PISWARM_DISCOVERY_ADDRESS_RECHECK_MS: '2000',
};

interface SwarmNode { hostname: string; state: string; addr: string; role: string }

/** Every node the swarm lists, as the manager's engine sees it. */
async function swarmNodes(ref: sim.ClusterRef, manager: string): Promise<SwarmNode[] | null> {
  const r = await sim.exec(ref, manager, ['sh', '-c', "docker node inspect $(docker node ls -q) --format '{{.Description.Hostname}}|{{.Status.State}}|{{.Status.Addr}}|{{.Spec.Role}}'"], { timeoutMs: 10_000 });
  if (r.code !== 0) return null;
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [hostname, state, addr, role] = l.split('|');
    return { hostname: hostname!, state: state!, addr: addr!, role: role! };
  });
}

async function netAddress(ip: string): Promise<{ status: string; observedValue?: unknown; output?: string } | null> {
  const r = await httpGet(`http://${ip}:7070/health`);
  if (r.status === 0) return null;
  const body = JSON.parse(r.text) as { checks: Record<string, Array<{ status: string; observedValue?: unknown; output?: string }>> };
  return body.checks['net:address']?.[0] ?? null;
}

t.test('a worker\'s address moves (DHCP): reported in /health, /metrics and the journal, nothing changed; after leave + restart it is back with the new address', { skip, timeout: 600_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-addr', nodes: 2, env: ENV });
  const names = c.nodes.map((n) => n.name);
  const formed = await until('one swarm of 2, both Ready', async () => {
    for (const name of names) {
      const ls = await swarmNodes(c.ref, name);
      if (ls && ls.length === 2 && ls.every((n) => n.state === 'ready')) return { manager: name, ls };
    }
    return null;
  }, 120_000);
  const worker = c.nodes.find((n) => formed.ls.find((x) => x.hostname === n.name)?.role === 'worker')!;
  t.ok(worker, `a worker: ${formed.ls.map((n) => `${n.hostname} ${n.role} ${n.addr}`).join(', ')}`);
  t.match(await netAddress(worker.ip), { status: 'pass', observedValue: worker.ip }, 'net:address passes with the address in use');

  // The lease moves: same network, another host number (the sim hands out .11 upwards; .250 is
  // the cluster's registry node since scripts/sim/registry.ts, and CI caught this test taking it).
  const newIp = worker.ip.replace(/\.\d+$/, `.${REGISTRY_OCTET - 50}`);
  const route = (await sim.exec(c.ref, worker.name, ['ip', '-4', 'route', 'show', 'default'])).stdout.trim();
  const gw = /via (\S+)/.exec(route)?.[1];
  t.ok(gw, `default route: ${route}`);
  const moved = await sim.exec(c.ref, worker.name, ['sh', '-c', `ip -4 addr flush dev eth0 && ip addr add ${newIp}/24 dev eth0 && ip route add default via ${gw} dev eth0`]);
  t.equal(moved.code, 0, `address moved to ${newIp} ${moved.stderr}`);

  const warned = await until('net:address to warn', async () => {
    const r = await netAddress(newIp);
    return r?.status === 'warn' ? r : null;
  }, 30_000);
  t.match(warned.output, new RegExp(`^the advertise address ${worker.ip.replace(/\./g, '\\.')} \\(eth0\\) is no longer an address of this host: it now has ${newIp.replace(/\./g, '\\.')} \\(eth0, default route via`), warned.output ?? '');
  t.equal(warned.observedValue, worker.ip, 'the value is the address still in use');
  const metrics = await httpGet(`http://${newIp}:7070/metrics`);
  t.match(metrics.text, /\npiswarm_advertise_address_stale 1\n/);
  t.match(metrics.text, /\npiswarm_advertise_address_losses_total 1\n/);
  const journal = await sim.exec(c.ref, worker.name, ['journalctl', '-u', 'piswarm', '-p', 'warning', '-o', 'cat', '--no-pager']);
  t.match(journal.stdout, /PISWARM_ERR_ADDRESS_CHANGED/, 'a warning-priority journal line with the code');
  const ls = await swarmNodes(c.ref, formed.manager);
  t.equal(ls?.length, 2, 'nothing was changed: no leave, no second node');

  // What the warning says to do, on a worker: leave, restart piswarm.
  t.equal((await sim.exec(c.ref, worker.name, ['docker', 'swarm', 'leave'], { timeoutMs: 30_000 })).code, 0, 'docker swarm leave');
  t.equal((await sim.exec(c.ref, worker.name, ['systemctl', 'restart', 'piswarm'], { timeoutMs: 30_000 })).code, 0, 'systemctl restart piswarm');
  const back = await until(`${worker.name} Ready at ${newIp}`, async () => {
    const now = await swarmNodes(c.ref, formed.manager);
    return now?.find((n) => n.hostname === worker.name && n.state === 'ready' && n.addr === newIp) ?? null;
  }, 90_000);
  t.match(back, { role: 'worker' }, `joined again by itself at ${newIp}`);
  t.match(await netAddress(newIp), { status: 'pass', observedValue: newIp }, 'net:address passes with the new address');
});
