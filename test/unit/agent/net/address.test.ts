import t from 'tap';
import { addressDrift, chooseAdvertiseAddress, joinHostPort, parseRouteTable, type InterfaceTable } from '../../../../agent/net/address.js';

const v4 = (address: string, internal = false) => ({ address, family: 'IPv4', internal, netmask: '255.255.255.0' });
const v6 = (address: string) => ({ address, family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::' });
const HDR = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
const none = { discovery: {} };

// Recorded on a Raspberry Pi 4 (Raspberry Pi OS bookworm) with both cable and Wi-Fi up,
// after Docker was installed and a swarm service ran (docker0, docker_gwbridge, a veth).
const PI_ROUTES = HDR + [
  'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
  'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
  'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'docker_gwbridge\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
  'wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0',
].join('\n');
const PI_IFACES: InterfaceTable = {
  lo: [v4('127.0.0.1', true)],
  eth0: [v4('192.168.1.21'), v6('fe80::dea6:32ff:fe01:2345')],
  wlan0: [v4('192.168.1.121'), v6('fe80::dea6:32ff:fe01:2346')],
  docker0: [v4('172.17.0.1')],
  docker_gwbridge: [v4('172.18.0.1')],
  veth3f2a1b0: [v6('fe80::a4b1:2ff:fe3c:4d5e')],
};

// Recorded on the x86 CI machine with the engine running (this file's build host).
const X86_ROUTES = HDR + [
  'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'br-5c1a2b3c4d5e\t000014AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
].join('\n');
const X86_IFACES: InterfaceTable = {
  lo: [v4('127.0.0.1', true)],
  docker0: [v4('172.17.0.1')],
  'br-5c1a2b3c4d5e': [v4('172.20.0.1')],
  eth0: [v4('192.0.2.2')],
};

// A simulated Pi container: eth0 on the cluster bridge, plus its inner engine's bridges.
const CONTAINER_ROUTES = HDR + [
  'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'eth0\t00000000\t01003A0A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t00003A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
].join('\n');
const CONTAINER_IFACES: InterfaceTable = {
  lo: [v4('127.0.0.1', true)],
  docker0: [v4('172.17.0.1')],
  docker_gwbridge: [v4('172.18.0.1')],
  veth9a8b7c6: [v6('fe80::1')],
  eth0: [v4('10.58.0.12')],
};

t.test('route table parsing', async (t) => {
  const r = parseRouteTable(PI_ROUTES);
  t.equal(r.length, 6);
  t.same(r[0], { iface: 'eth0', destination: '0.0.0.0', gateway: '192.168.1.1', mask: '0.0.0.0', flags: 3, metric: 100 });
  t.equal(r[2]!.destination, '172.17.0.0');
  t.same(parseRouteTable('garbage\nnot a route\n\n'), [], 'garbage is skipped');
});

t.test('Pi with eth0 and wlan0: the lower-metric default route wins (cable)', async (t) => {
  const c = chooseAdvertiseAddress(PI_IFACES, parseRouteTable(PI_ROUTES), none);
  t.same([c.address, c.interface], ['192.168.1.21', 'eth0']);
  t.match(c.reason, /default route via 192\.168\.1\.1/);
});

t.test('x86 with docker bridges: never docker0 or br-*', async (t) => {
  const c = chooseAdvertiseAddress(X86_IFACES, parseRouteTable(X86_ROUTES), none);
  t.same([c.address, c.interface], ['192.0.2.2', 'eth0']);
});

t.test('container with veth and inner docker bridges', async (t) => {
  const c = chooseAdvertiseAddress(CONTAINER_IFACES, parseRouteTable(CONTAINER_ROUTES), none);
  t.same([c.address, c.interface], ['10.58.0.12', 'eth0']);
});

t.test('no default route (switch-only cluster): wired before wireless, never bridges or link-local', async (t) => {
  const ifaces: InterfaceTable = { docker0: [v4('172.17.0.1')], wlan0: [v4('10.0.0.9')], eth0: [v4('169.254.3.4')], lo: [v4('127.0.0.1', true)] };
  const c = chooseAdvertiseAddress(ifaces, [], none);
  t.same([c.address, c.interface], ['10.0.0.9', 'wlan0'], 'eth0 has only a link-local address');
  t.match(c.reason, /no default route/);
});

t.test('a default route through docker0 is ignored', async (t) => {
  const routes = parseRouteTable(HDR + 'docker0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0');
  t.equal(chooseAdvertiseAddress(X86_IFACES, routes, none).interface, 'eth0');
});

t.test('overrides', async (t) => {
  const tables = [PI_IFACES, parseRouteTable(PI_ROUTES)] as const;
  t.same(chooseAdvertiseAddress(...tables, { discovery: { interface: 'wlan0' } }).address, '192.168.1.121');
  t.same(chooseAdvertiseAddress(...tables, { discovery: { advertiseAddress: '192.168.1.121' } }).interface, 'wlan0');
  t.throws(() => chooseAdvertiseAddress(...tables, { discovery: { advertiseAddress: '10.9.9.9' } }), { name: 'PiswarmError', code: 'PISWARM_ERR_NO_ADDRESS' });
  t.throws(() => chooseAdvertiseAddress(...tables, { discovery: { interface: 'eth9' } }), { name: 'PiswarmError', code: 'PISWARM_ERR_NO_ADDRESS' });
});

t.test('nothing usable yet (DHCP still running): coded error', async (t) => {
  t.throws(() => chooseAdvertiseAddress({ lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')] }, [], none), { name: 'PiswarmError', code: 'PISWARM_ERR_NO_ADDRESS' });
});

t.test('host:port for the engine: IPv6 in brackets, IPv4 and names bare', async (t) => {
  t.equal(joinHostPort('192.168.1.21', 2377), '192.168.1.21:2377');
  t.equal(joinHostPort('fd00::21', 2377), '[fd00::21]:2377', 'Go\'s SplitHostPort refuses fd00::21:2377');
  t.equal(joinHostPort('[fd00::21]', 2377), '[fd00::21]:2377', 'already bracketed: not twice');
  t.equal(joinHostPort('pi-1.local', 7070), 'pi-1.local:7070');
});

t.test('addressDrift: silent while the address in use is still the host\'s, whatever it would choose now; says what it has instead once it is gone', async (t) => {
  const inUse = { address: '192.168.1.21', interface: 'eth0', reason: 'default route via 192.168.1.1 (metric 100)' };
  const table = (over: Record<string, Array<{ address: string; family: string; internal: boolean }>>) => over;
  const now = { address: '192.168.1.57', interface: 'eth0', reason: 'default route via 192.168.1.1 (metric 100)' };
  t.equal(addressDrift(inUse, table({ eth0: [{ address: '192.168.1.21', family: 'IPv4', internal: false }] }), () => inUse), null);
  t.equal(addressDrift(inUse, table({ eth0: [{ address: '192.168.1.21', family: 'IPv4', internal: false }], wlan0: [{ address: '10.1.1.2', family: 'IPv4', internal: false }] }), () => ({ ...now, address: '10.1.1.2', interface: 'wlan0' })), null, 'a preferred second address is no drift');
  t.equal(addressDrift(inUse, table({ wlan0: [{ address: '192.168.1.21', family: 'IPv4', internal: false }] }), () => now), null, 'moved to another interface: still reachable at it');
  t.same(addressDrift(inUse, table({ eth0: [{ address: '192.168.1.57', family: 'IPv4', internal: false }] }), () => now), {
    now,
    why: 'the advertise address 192.168.1.21 (eth0) is no longer an address of this host: it now has 192.168.1.57 (eth0, default route via 192.168.1.1 (metric 100))',
  });
  t.same(addressDrift(inUse, table({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }] }), () => {
    throw new Error('no interface other than loopback and container bridges has an IPv4 address (yet)');
  }), {
    now: null,
    why: 'the advertise address 192.168.1.21 (eth0) is no longer an address of this host, and it has no other usable one: no interface other than loopback and container bridges has an IPv4 address (yet)',
  });
  t.not(addressDrift(inUse, { eth0: undefined }, () => now), null, 'an interface listed without addresses holds none');
});
