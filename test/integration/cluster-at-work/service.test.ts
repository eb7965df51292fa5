/**
 * The walkthrough's service on a 5-node simulated cluster formed by the
 * agents, deployed the way `npm run sim -- demo` does it (deployDemo: the
 * image from the cluster's registry node, host-mode publish): tasks run only
 * on active nodes (the managers the autopilot drained under
 * managerAvailability=auto run none), every task answers from the host, and
 * through the leader's power cut the service answers at every sample (each
 * replica asked every second) while the autopilot restores three managers,
 * and the desired replicas run; a replica that stopped meanwhile must have
 * been moved by the swarm, not stopped by piswarm (same dockerd process,
 * same swarm node id); a worker's power cut has its task rescheduled and
 * answering again. A
 * `docker stack deploy` of scripts/sim/demo-image/stack.yml: a client service
 * reaches the server by its name over an overlay network. Hardware labels:
 * the leader's agent labels every node, and a worker whose agent is
 * restarted as an NVMe Pi 5 (PISWARM_SIM_HARDWARE) is labelled so within an
 * interval, its user label kept, and a service constrained to
 * node.labels.piswarm.storage==nvme runs only there.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { httpGet, sim, skipReason, startCluster } from '../helpers/cluster.js';
import { answered, deployDemo, demoTasks, describeMissing, probeReplicas, waitForReplicas, DEMO_SERVICE } from '../../../scripts/sim/demo.js';
import { FAST_AUTOPILOT, nodeLs, reachableManagers, until, type SwarmRow } from '../healing/swarm.js';

const skip = await skipReason();

interface Failure { at: number; node: string; why: string }

/** One request to a replica: null when it answered 200, else why not (the socket error's code when there is one). */
async function probe(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200 ? null : `HTTP ${res.status}`;
  } catch (err) {
    const code = ((err as Error).cause as { code?: string } | undefined)?.code;
    return code ? `${(err as Error).message} (${code})` : (err as Error).message;
  }
}

/** Failed requests as one line per node: how many, from when to when (seconds after the power cut), and why. */
function outages(failures: Failure[], t0: number): string[] {
  const s = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
  return [...new Set(failures.map((f) => f.node))].map((node) => {
    const own = failures.filter((f) => f.node === node);
    return `${node}: ${own.length} failed, ${s(own[0]!.at)} to ${s(own.at(-1)!.at)} after the power cut (${[...new Set(own.map((f) => f.why))].join('; ')})`;
  });
}

/** Each node's dockerd process id and swarm node id: both stay the same unless its engine restarted or it left the swarm. */
async function engineMarks(ref: sim.ClusterRef, nodes: string[]): Promise<Map<string, string>> {
  return new Map(await Promise.all(nodes.map(async (n): Promise<[string, string]> => {
    const r = await sim.exec(ref, n, ['sh', '-c', 'echo "dockerd pid $(systemctl show docker -p MainPID --value), swarm node $(docker info --format "{{.Swarm.NodeID}}")"'], { timeoutMs: 15_000 });
    return [n, r.stdout.trim()];
  })));
}

interface TaskRow { node: string; desired: string; state: string }

/** Every task of the demo service, current and past (`docker service ps` keeps the history). */
async function taskHistory(ref: sim.ClusterRef, manager: string): Promise<TaskRow[]> {
  const r = await sim.exec(ref, manager, ['docker', 'service', 'ps', DEMO_SERVICE, '--format', '{{.Node}}|{{.DesiredState}}|{{.CurrentState}}'], { timeoutMs: 15_000 });
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [node = '', desired = '', state = ''] = l.split('|');
    return { node, desired, state };
  });
}

const showTask = (h: TaskRow) => `${h.node} desired=${h.desired} ${h.state}`;

/** Evidence for a failed replica, a few short lines: the service's task history and each failing node's engine and agent journal. */
async function whyReplicasFailed(ref: sim.ClusterRef, history: TaskRow[], nodes: string[], t0: number): Promise<string[]> {
  const cut = (l: string) => l.length > 180 ? `${l.slice(0, 177)}...` : l;
  const out = [`tasks: ${history.map(showTask).join(' | ')}`];
  const since = Math.floor(t0 / 1000) - 5;
  for (const node of nodes) {
    const j = await sim.exec(ref, node, ['sh', '-c', `journalctl -o short-precise --since @${since} -u docker -u piswarm -u piswarm-engine-restart --no-pager | grep -iE "raft node|session|Restarting swarm|engine-recovery|Stopping|Started|promot|leav|shut|dispatcher|relay" | grep -v "Handler for" | head -14`], { timeoutMs: 20_000 });
    out.push(...j.stdout.trim().split('\n').filter(Boolean).map((l) => cut(`${node} ${l.replace(/^\S+ \S+ (\S+) \S+ /, '$1 ')}`)));
  }
  return out;
}

/** A worker's power cut to its task answering again elsewhere: the bound this test holds the cluster to. */
const RESCHEDULE_MS = 120_000;

t.test('the walkthrough\'s http-server on 5 simulated Pis', { skip, timeout: 600_000 }, async (t) => {
  const c = await startCluster(t, {
    prefix: 'it-svc', nodes: 5,
    env: { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '5', PISWARM_AUTOPILOT_MANAGER_AVAILABILITY: 'auto' },
  });
  const names = c.nodes.map((n) => n.name);
  const t0 = Date.now();
  const formed = await until('5 Ready nodes, 3 managers drained by the autopilot, 2 active workers', async () => {
    const l = await nodeLs(c.ref, names);
    const managers = l?.filter((x) => x.manager !== '') ?? [];
    const workers = l?.filter((x) => x.manager === '') ?? [];
    return l && l.length === 5 && l.every((x) => x.status === 'Ready') && managers.length === 3 &&
      managers.every((x) => x.availability === 'Drain') && workers.every((x) => x.availability === 'Active') && l;
  }, 240_000);
  const active = (l: SwarmRow[]) => l.filter((x) => x.status === 'Ready' && x.availability === 'Active').map((x) => x.hostname);
  const workers = active(formed);
  t.comment(`formed, managers drained: ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents answered`);
  t.equal(workers.length, 2, `two active workers (${workers.join(', ')})`);

  const demo = await deployDemo({ ...c.ref, timeoutMs: 180_000 });
  t.comment(`${demo.command.slice(0, 3).join(' ')} ... ${demo.image}: ${demo.replicas} replicas answer ${(demo.readyMs / 1000).toFixed(1)} s after service create`);
  t.equal(demo.replicas, 2, 'one replica per active node (port 80 is published on each host)');
  t.same(demo.answers.map((a) => a.node).sort(), [...workers].sort(), 'tasks run on the active workers only, none on a drained manager');
  t.ok(demo.answers.every(answered), 'every task answers with the demo page');
  t.equal(new Set(demo.answers.map((a) => a.container)).size, 2, 'each replica names its own container');
  t.match(demo.image, /^10\.231\.\d+\.250:5000\/piswarm-demo\/http-server:/, 'pulled from the cluster\'s registry node');

  await t.test('docker stack deploy: a client reaches the server by name over an overlay network', async (t) => {
    const manager = demo.manager;
    const stack = await readFile(join(sim.repoRoot(), 'scripts/sim/demo-image/stack.yml'), 'utf8');
    const deploy = await sim.exec(c.ref, manager, ['env', `DEMO_IMAGE=${demo.image}`, 'docker', 'stack', 'deploy', '-c', '-', 'demo'], { input: stack, timeoutMs: 60_000 });
    t.equal(deploy.code, 0, `docker stack deploy: ${(deploy.stderr || deploy.stdout).trim()}`);
    const s0 = Date.now();
    const line = await until('the client logging an answer from web', async () => {
      const logs = await sim.exec(c.ref, manager, ['docker', 'service', 'logs', '--raw', 'demo_client'], { timeoutMs: 10_000 });
      return /^web answered: ([0-9a-f]{12})$/m.exec(logs.stdout)?.[0];
    }, 90_000);
    const placed = await sim.exec(c.ref, manager, ['docker', 'stack', 'ps', 'demo', '--filter', 'desired-state=running', '--format', '{{.Name}} {{.Node}}']);
    t.comment(`${line} (${((Date.now() - s0) / 1000).toFixed(1)} s after stack deploy); tasks: ${placed.stdout.trim().split('\n').join(', ')}`);
    const driver = await sim.exec(c.ref, manager, ['docker', 'network', 'inspect', 'demo_backend', '--format', '{{.Driver}}']);
    t.equal(driver.stdout.trim(), 'overlay', 'the services share an overlay network');
    t.equal((await sim.exec(c.ref, manager, ['docker', 'stack', 'rm', 'demo'])).code, 0, 'docker stack rm');
  });

  await t.test('hardware labels: every node labelled; one made an NVMe Pi 5 gets those labels, a user label kept, and a constrained service lands only there', async (t) => {
    const manager = demo.manager;
    const labelsOf = async (): Promise<Map<string, Record<string, string>>> => {
      const r = await sim.exec(c.ref, manager, ['docker', 'node', 'inspect', ...names, '--format', '{{.Description.Hostname}} {{json .Spec.Labels}}'], { timeoutMs: 15_000 });
      if (r.code !== 0) return new Map();
      return new Map(r.stdout.trim().split('\n').map((l) => {
        const i = l.indexOf(' ');
        return [l.slice(0, i), JSON.parse(l.slice(i + 1)) as Record<string, string>];
      }));
    };
    const all = await until('piswarm.arch and piswarm.memory_gb on every node', async () => {
      const m = await labelsOf();
      return m.size === 5 && [...m.values()].every((l) => l['piswarm.arch'] && l['piswarm.memory_gb']) && m;
    }, 60_000);
    t.comment(`labels: ${[...all].map(([n, l]) => `${n} ${Object.entries(l).filter(([k]) => k.startsWith('piswarm.')).map(([k, v]) => `${k.slice(8)}=${v}`).join(',')}`).join('; ')}`);
    t.notOk([...all.values()].some((l) => 'piswarm.model' in l), 'no piswarm.model on a machine that is not a Pi');

    const w = workers[0]!;
    t.equal((await sim.exec(c.ref, manager, ['docker', 'node', 'update', '--label-add', 'site=attic', w])).code, 0, 'a user label on the worker');
    const hw = 'PISWARM_SIM_HARDWARE=revision=d04170,storage=nvme,diskBps=800000000';
    const restart = await sim.exec(c.ref, w, ['sh', '-c', `echo ${hw} >> /etc/piswarm/env && systemctl restart piswarm`], { timeoutMs: 60_000 });
    t.equal(restart.code, 0, `${w}: its agent restarted as an 8 GB Pi 5 on NVMe (${hw})`);
    const t0 = Date.now();
    const want = { 'piswarm.model': 'pi5', 'piswarm.memory_gb': '8', 'piswarm.storage': 'nvme', 'piswarm.disk_speed': 'fast' };
    const after = await until(`${w}: the Pi 5 labels`, async () => {
      const l = (await labelsOf()).get(w);
      return l && Object.entries(want).every(([k, v]) => l[k] === v) && l;
    }, 60_000);
    t.comment(`${w}: labels followed its facts ${((Date.now() - t0) / 1000).toFixed(1)} s after its agent restarted`);
    t.equal(after['site'], 'attic', 'the user\'s own label is untouched');
    const leaderName = (await nodeLs(c.ref, names))?.find((x) => x.manager === 'Leader')?.hostname;
    const metrics = await httpGet(`${c.nodes.find((n) => n.name === leaderName)?.apiUrl}/metrics`);
    const updates = Number(/^piswarm_labels_updates_total\{result="ok"\} (\d+)$/m.exec(metrics.text)?.[1] ?? 0);
    t.ok(updates >= 6, `the leader (${leaderName}) counts its label updates: ${updates} (5 nodes labelled, then ${w} again)`);
    t.match(metrics.text, /^piswarm_labels_managed [1-9]\d*$/m, 'and the labels it manages');
    const others = await labelsOf();
    t.notOk(names.filter((n) => n !== w).some((n) => others.get(n)?.['piswarm.storage'] === 'nvme'), 'no other node is labelled nvme');

    const create = await sim.exec(c.ref, manager, ['docker', 'service', 'create', '--detach', '--name', 'on-nvme', '--replicas', '2',
      '--constraint', 'node.labels.piswarm.storage==nvme', demo.image, 'python3', '-m', 'http.server', '8001'], { timeoutMs: 30_000 });
    t.equal(create.code, 0, `docker service create --constraint node.labels.piswarm.storage==nvme: ${create.stderr.trim()}`);
    const placed = await until('2 running tasks of on-nvme', async () => {
      const r = await sim.exec(c.ref, manager, ['docker', 'service', 'ps', 'on-nvme', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
      const rows = r.stdout.trim().split('\n').filter((x) => x !== '');
      return rows.length === 2 && rows.every((x) => / Running /.test(`${x} `)) && rows.map((x) => x.split(' ')[0]!);
    }, 90_000);
    t.same(placed, [w, w], `both tasks on ${w}, the only node labelled nvme`);
    t.equal((await sim.exec(c.ref, manager, ['docker', 'service', 'rm', 'on-nvme'])).code, 0, 'docker service rm');
  });

  const dead: string[] = [];
  const alive = () => names.filter((n) => !dead.includes(n));

  await t.test('the leader\'s power cut: the service answers throughout, 3 managers restored, the replicas run', async (t) => {
    const leader = (await nodeLs(c.ref, names))!.find((x) => x.manager === 'Leader')!;
    t.ok(leader, 'a leader');
    const replicaNodes = demo.answers.map((a) => a.node).filter((n) => n !== leader.hostname);
    const engines0 = await engineMarks(c.ref, replicaNodes);
    let requests = 0;
    const failures: Failure[] = [];
    const dark: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const tick = Date.now();
        const rs = await Promise.all(demo.answers.map(async (a) => ({ a, r: await probe(a.url) })));
        requests += rs.length;
        for (const { a, r } of rs) if (r !== null) failures.push({ at: Date.now(), node: a.node, why: r });
        if (rs.every((x) => x.r !== null)) dark.push(Date.now());
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
      }
    })();
    const t0 = Date.now();
    let healed: SwarmRow[];
    try {
      await sim.kill(c.ref, leader.hostname);
      dead.push(leader.hostname);
      healed = await until('3 reachable managers without the dead leader', async () => {
        const l = await nodeLs(c.ref, alive());
        return l && reachableManagers(l) === 3 && !l.some((x) => x.id === leader.id && x.manager !== '') && l;
      }, 180_000);
    } finally {
      sampling = false;
      await sampler;
    }
    const ms = Date.now() - t0;
    t.comment(`leader ${leader.hostname} power cut -> 3 reachable managers again: ${(ms / 1000).toFixed(1)} s; ${requests} requests to the ${demo.answers.length} replicas meanwhile (1 per replica per second), ${failures.length} failed`);
    const manager = healed.find((x) => x.manager === 'Leader')!.hostname;
    // A replica may stop for the swarm's own reasons: a worker that has not
    // reached the new leader within its grace (twice the heartbeat grace
    // after a leadership change, ~30 s) is marked down, and its tasks are
    // started elsewhere and shut down on it. What piswarm must not do is stop
    // it: restart the node's dockerd or have it leave the swarm. CI keeps
    // only the end of the log and a failed assertion's first lines, so the
    // evidence (task history, journals) goes into the diagnostics.
    const failed = [...new Set(failures.map((f) => f.node))];
    const history = failed.length === 0 ? [] : await taskHistory(c.ref, manager);
    const cause = failed.length === 0 ? [] : [...outages(failures, t0), ...await whyReplicasFailed(c.ref, history, failed, t0)];
    for (const line of cause) t.comment(line);
    t.same(dark.map((at) => `${((at - t0) / 1000).toFixed(1)} s after the power cut`), [], 'the service answered at every sample: some replica answered each second', { cause });
    if (failed.length > 0) {
      const engines1 = await engineMarks(c.ref, failed);
      for (const node of failed) {
        t.same(engines1.get(node), engines0.get(node), `${node}, whose replica failed: the same dockerd process and swarm node id as before the power cut (nothing restarted its engine or made it leave)`, { cause });
        t.ok(history.some((h) => h.node === node && h.desired === 'Shutdown'), `${node}: the swarm replaced that replica (its old task's desired state is Shutdown)`, { cause, history: history.map(showTask) });
        // The autopilot drains only managers, and only with 2+ stable workers left.
        t.equal(healed.find((x) => x.hostname === node)?.availability, 'Active', `${node}: still active (nothing drained it)`, { cause });
      }
    }
    const replicas = await waitForReplicas(c.ref, manager, demo.replicas, 60_000);
    t.equal(replicas.length, demo.replicas, `the desired ${demo.replicas} replicas run and answer (${replicas.map((a) => a.node).join(', ')})`);
  });

  await t.test('a power cut of a node that runs a task (a worker where one does): its task is rescheduled and answers again', async (t) => {
    const before = (await nodeLs(c.ref, alive()))!;
    const manager0 = before.find((x) => x.manager === 'Leader')!.hostname;
    const placed0 = (await demoTasks(c.ref, manager0)).map((x) => x.node);
    // After the leader's power cut the autopilot may have promoted the worker
    // that ran a replica and made the drained managers active (too few
    // workers left), so both replicas can run on managers (CI saw it once).
    // A non-leader manager's power cut tests the same rescheduling; quorum
    // holds with 2 of 3.
    const victim = (before.find((x) => x.manager === '' && placed0.includes(x.hostname)) ?? before.find((x) => x.manager === 'Reachable' && placed0.includes(x.hostname)))?.hostname;
    if (!victim) throw new Error(`no node but the leader runs a task (tasks on ${placed0.join(', ')}; leader: ${manager0})`);
    t.comment(`taking out ${victim} (${before.find((x) => x.hostname === victim)!.manager === '' ? 'a worker' : 'a manager: no worker runs a task'}); tasks on ${placed0.join(', ')}`);
    const t0 = Date.now();
    await sim.kill(c.ref, victim);
    dead.push(victim);
    const manager = await until('a manager that answers', async () => {
      const l = await nodeLs(c.ref, alive());
      return l?.find((x) => x.manager === 'Leader')?.hostname;
    }, 30_000);
    let last: Awaited<ReturnType<typeof probeReplicas>> = [];
    const back = await until(`2 replicas answering, none on ${victim}`, async () => {
      last = await probeReplicas(c.ref, manager);
      return last.length === 2 && last.every(answered) && !last.some((a) => a.node === victim) && last;
    }, RESCHEDULE_MS).catch((err: Error) => {
      throw new Error(`${err.message}\n  ${describeMissing(last, 2)}`);
    });
    const ms = Date.now() - t0;
    t.comment(`power cut of ${victim} -> its task answering again on ${back.map((a) => a.node).filter((n) => !placed0.includes(n)).join(', ')}: ${(ms / 1000).toFixed(1)} s (bound ${RESCHEDULE_MS / 1000} s)`);
    t.ok(ms < RESCHEDULE_MS, `rescheduled and answering within ${RESCHEDULE_MS / 1000} s`);
    const l = (await nodeLs(c.ref, alive()))!;
    const placed = (await demoTasks(c.ref, manager)).map((x) => x.node);
    t.ok(placed.every((n) => active(l).includes(n)), `tasks only on active nodes (${placed.join(', ')}; active: ${active(l).join(', ')})`);
    t.comment(`${DEMO_SERVICE} after the power cut: ${back.map((a) => `${a.node} (${a.container})`).join(', ')}; availability: ${l.map((x) => `${x.hostname} ${x.status} ${x.availability}`).join(', ')}`);
  });
});
