import t from 'tap';
import { run, toolMissing } from '../../../../agent/provision/exec.js';
import { parseXzRobotList } from '../../../../agent/provision/image.js';

t.test('a missing tool names the Debian package to install', async (t) => {
  await t.rejects(run('piswarm-no-such-tool-xyz', []), { code: 'PISWARM_ERR_TOOL_MISSING', message: /"piswarm-no-such-tool-xyz" is not installed/ });
  t.match(toolMissing('xz').message, /install Debian's xz-utils package \(sudo apt-get install xz-utils\)/);
  t.match(toolMissing('mcopy').message, /mtools/);
});

t.test('xz --robot --list totals give the uncompressed size', async (t) => {
  t.equal(parseXzRobotList('name\tpi.img.xz\nfile\t1\t1\t100064\t2785017856\t0.036\tCRC64\t0\ntotals\t1\t1\t100064\t2785017856\t0.036\tCRC64\t0\t1\n'), 2785017856);
  t.throws(() => parseXzRobotList('garbage'), { code: 'PISWARM_ERR_IMAGE_LAYOUT', message: /uncompressed size/ });
});
