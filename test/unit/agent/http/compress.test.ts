import t from 'tap';
import { acceptsGzip } from '../../../../agent/http/compress.js';

t.test('gzip is accepted when named or covered by * with a q-value above 0', async (t) => {
  const yes = ['gzip', 'gzip, deflate', 'deflate, gzip;q=0.5', 'GZIP', 'x-gzip', '*', 'br, *;q=0.1', 'identity;q=1, gzip;q=1.0', ['deflate', 'gzip']];
  const no = [undefined, '', 'identity', 'br, deflate', 'gzip;q=0', 'gzip; q=0.0', '*;q=0', 'gzip;q=0, *', 'gzipped'];
  for (const h of yes) t.equal(acceptsGzip(h), true, JSON.stringify(h));
  for (const h of no) t.equal(acceptsGzip(h), false, JSON.stringify(h));
});
