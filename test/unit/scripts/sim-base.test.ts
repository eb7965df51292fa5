// Which base the simulated Pi is built on (scripts/sim/images.ts chooseBase).
// The probes are fakes of three host questions; one that is not expected to
// be asked throws, so a choice made from the wrong evidence fails the test.
import t from 'tap';
import { chooseBase, DEFAULT_OS, imagesFor, simOs, type BaseProbes } from '../../../scripts/sim/images.js';

const { localBase: LOCAL_BASE, publicBase: PUBLIC_BASE } = imagesFor('trixie');

const never = (what: string) => async (): Promise<never> => {
  throw new Error(`${what} must not be asked`);
};

function probes(p: Partial<BaseProbes>): BaseProbes & { asked: string[] } {
  const asked: string[] = [];
  const wrap = <K extends 'localBaseCurrent' | 'publicPresent' | 'pullPublic'>(k: K): BaseProbes[K] => {
    const f = p[k] ?? never(k);
    return (async () => {
      asked.push(k);
      return f();
    }) as BaseProbes[K];
  };
  return { given: p.given, localBase: LOCAL_BASE, publicBase: PUBLIC_BASE, localBaseCurrent: wrap('localBaseCurrent'), publicPresent: wrap('publicPresent'), pullPublic: wrap('pullPublic'), asked };
}

t.test('an explicit base is used as it is, nothing asked', async (t) => {
  const p = probes({ given: 'example/debian:custom' });
  t.same(await chooseBase(p), { base: 'example/debian:custom', buildLocal: false, why: 'given (example/debian:custom)' });
  t.same(p.asked, []);
  const local = probes({ given: LOCAL_BASE });
  t.equal((await chooseBase(local)).buildLocal, true, 'the local base named explicitly is still built (or found current) by build-base.sh');
});

t.test('a current local base wins without asking any registry', async (t) => {
  const p = probes({ localBaseCurrent: async () => true });
  t.same(await chooseBase(p), { base: LOCAL_BASE, buildLocal: false, why: `${LOCAL_BASE} is current` });
  t.same(p.asked, ['localBaseCurrent'], 'no pull, no inspect');
});

t.test('the public base already in the store is used without a pull', async (t) => {
  const p = probes({ localBaseCurrent: async () => false, publicPresent: async () => true });
  t.match(await chooseBase(p), { base: PUBLIC_BASE, buildLocal: false });
  t.same(p.asked, ['localBaseCurrent', 'publicPresent']);
});

t.test('a registry that answers: the public base, pulled once', async (t) => {
  const p = probes({ localBaseCurrent: async () => false, publicPresent: async () => false, pullPublic: async () => ({ ok: true, reason: '' }) });
  t.same(await chooseBase(p), { base: PUBLIC_BASE, buildLocal: false, why: `pulled ${PUBLIC_BASE}` });
  t.same(p.asked, ['localBaseCurrent', 'publicPresent', 'pullPublic']);
});

t.test('no registry (this build machine): build-base.sh makes the local base, and the reason is kept', async (t) => {
  const reason = 'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host';
  const p = probes({ localBaseCurrent: async () => false, publicPresent: async () => false, pullPublic: async () => ({ ok: false, reason }) });
  const c = await chooseBase(p);
  t.equal(c.base, LOCAL_BASE);
  t.equal(c.buildLocal, true);
  t.ok(c.why.includes(reason), 'the engine\'s answer is in the log line');
  t.match(c.why, /cannot be pulled .*debootstrap/);
});

t.test('a probe that fails (no engine) rejects: no guess', async (t) => {
  const p = probes({ localBaseCurrent: async () => { throw new Error('docker: not found'); } });
  await t.rejects(chooseBase(p), /docker: not found/);
});

t.test('the simulated OS: an option, else PISWARM_SIM_OS, else trixie; anything else is a usage error', async (t) => {
  t.equal(simOs('bookworm'), 'bookworm');
  t.equal(simOs(undefined), process.env.PISWARM_SIM_OS || DEFAULT_OS, 'the environment, else the default');
  t.equal(DEFAULT_OS, 'trixie', 'what a new user flashes today');
  t.throws(() => simOs('buster'), { code: 'PISWARM_ERR_BAD_REQUEST', message: /unknown simulated OS "buster": use one of trixie, bookworm/ });
});

t.test('each OS has its own images; only bookworm gets the host node', async (t) => {
  const [tx, bw] = [imagesFor('trixie'), imagesFor('bookworm')];
  t.match(tx, { localBase: 'piswarm/base:trixie', publicBase: 'debian:trixie', pi: 'piswarm/pi:sim-trixie', firstboot: 'piswarm/pi-firstboot:sim-trixie', hostNode: false });
  t.match(bw, { localBase: 'piswarm/base:bookworm', publicBase: 'debian:bookworm', pi: 'piswarm/pi:sim-bookworm', hostNode: true, osPackages: '' });
  t.match(tx.osPackages, /\bdocker-cli\b/, 'trixie: the CLI is its own package');
  t.match(tx.osPackages, /\bnodejs\b/, 'trixie: the distribution\'s node');
  t.not(tx.agent, bw.agent);
});
