import t from 'tap';
import { answered, describeMissing, pageContainer, parseTasks, serviceCreateArgs, type ReplicaAnswer } from '../../../scripts/sim/demo.js';
import { daemonJson, registryAddress } from '../../../scripts/sim/registry.js';

t.test('the walkthrough\'s step, adapted: replicas, host-mode publish, the registry image, the same command', async (t) => {
  t.same(serviceCreateArgs('10.231.7.250:5000/piswarm-demo/http-server:1-trixie', 3), [
    'docker', 'service', 'create', '--detach', '--name', 'http-server', '--replicas', '3',
    '--publish', 'mode=host,target=8000,published=80',
    '10.231.7.250:5000/piswarm-demo/http-server:1-trixie', 'python3', '-m', 'http.server', '8000',
  ]);
});

t.test('docker service ps lines: an unassigned task and an error holding the separator', async (t) => {
  t.same(parseTasks('abc|piswarm-2|Running 3 seconds ago|\nxyz||Pending 1 second ago|no suitable node (host-mode port already in use on 1 node|x)\n\n'), [
    { id: 'abc', node: 'piswarm-2', state: 'Running 3 seconds ago', error: '' },
    { id: 'xyz', node: '', state: 'Pending 1 second ago', error: 'no suitable node (host-mode port already in use on 1 node|x)' },
  ]);
});

t.test('the demo page names its container; any other page does not count as an answer', async (t) => {
  const page = '<!doctype html>\n<title>http-server 4f2a</title>\n<p>piswarm demo http-server, container <b id="container">4f2a9c1d0e3b</b></p>\n';
  t.equal(pageContainer(page), '4f2a9c1d0e3b');
  t.equal(pageContainer('<html>Directory listing for /</html>'), undefined);
  const base = { task: 't1', node: 'n1', state: 'Running', url: 'http://10.231.7.11:80/' };
  t.ok(answered({ ...base, status: 200, container: 'c' }));
  t.notOk(answered({ ...base, status: 200 }), 'HTTP 200 without the page');
  t.notOk(answered({ ...base, status: 0, container: 'c' }));
});

t.test('a timeout names every replica that does not answer, and the missing ones', async (t) => {
  const answers: ReplicaAnswer[] = [
    { task: 'aaaaaaaaaaaaaaaaaaaa', node: 'p-1', state: 'Running 1 second ago', url: 'http://10.0.0.11:80/', status: 200, container: 'c1' },
    { task: 'bbbbbbbbbbbbbbbbbbbb', node: 'p-2', state: 'Preparing 9 seconds ago', url: 'http://10.0.0.12:80/', status: 0, error: 'fetch failed' },
  ];
  t.equal(describeMissing(answers, 3), 'task bbbbbbbbbbbb on p-2 (Preparing 9 seconds ago; fetch failed): http://10.0.0.12:80/ no answer\n  1 replica(s) without a running task');
  t.equal(describeMissing(answers.slice(0, 1), 1), '');
});

t.test('each Pi\'s engine pulls from its cluster\'s registry over plain HTTP, and nothing else is configured', async (t) => {
  t.equal(registryAddress('10.231.7.'), '10.231.7.250:5000');
  t.same(JSON.parse(daemonJson('10.231.7.250:5000')), { 'insecure-registries': ['10.231.7.250:5000'] });
});
