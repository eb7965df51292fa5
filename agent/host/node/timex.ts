import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { PiswarmError } from '../../../shared/errors.js';

/**
 * The kernel clock discipline, as adjtimex(2) reports it with modes 0 (read
 * only), which is what node_exporter's timex collector serves. The syscall
 * has no file in /proc or /sys and Node.js has no binding for it, and the
 * release holds no native code (one tarball for arm64 and x86-64), so another
 * program makes the call. First the host's perl: Debian's perl-base is
 * Essential (on every Debian, Raspberry Pi OS and Ubuntu system) and its
 * `syscall` makes the call by number with a buffer laid out by `pack` in the
 * platform's C types (208 bytes on 64-bit Linux); it costs about 3 ms of CPU.
 * Else the host's Python, whose ctypes calls libc's adjtimex with `struct
 * timex` declared field by field (about 75 ms of CPU: importing ctypes is
 * most of it). Without either the series are absent, as node_exporter's are
 * where the syscall is refused.
 */
export interface TimexReading {
  /** adjtimex's return value: the clock state; 5 is TIME_ERROR (not synchronised). */
  state: number;
  offset: number;
  freq: number;
  maxerror: number;
  esterror: number;
  status: number;
  constant: number;
  tick: number;
  ppsfreq: number;
  jitter: number;
  shift: number;
  stabil: number;
  jitcnt: number;
  calcnt: number;
  errcnt: number;
  stbcnt: number;
  tai: number;
}

const FIELDS = ['state', 'offset', 'freq', 'maxerror', 'esterror', 'status', 'constant', 'tick', 'ppsfreq', 'jitter', 'shift', 'stabil', 'jitcnt', 'calcnt', 'errcnt', 'stbcnt', 'tai'] as const;

export const PYTHON = '/usr/bin/python3';
export const PERL = '/usr/bin/perl';

/** adjtimex's number per Node.js `process.arch` (x86-64, arm64 and 32-bit arm EABI); elsewhere python3. */
export const ADJTIMEX_SYSCALL: Readonly<Record<string, number>> = { x64: 159, arm64: 171, arm: 124 };

/**
 * The same call and output as TIMEX_SCRIPT, in perl. `l!` is the C long and
 * `x![l!]` the padding the C compiler puts before a long after an int (none
 * where a long is 4 bytes). Fields: modes, offset, freq, maxerror, esterror,
 * status, constant, precision, tolerance, time (tv_sec, tv_usec), tick,
 * ppsfreq, jitter, shift, stabil, jitcnt, calcnt, errcnt, stbcnt, tai.
 */
export function timexPerlScript(syscallNr: number): string {
  return `my $b = "\\0" x 208; my $r = syscall(${syscallNr}, $b);
if ($r < 0) { print '{"errno":' . ($! + 0) . "}\\n"; exit 0; }
my @n = qw(modes offset freq maxerror esterror status constant precision tolerance sec usec tick ppsfreq jitter shift stabil jitcnt calcnt errcnt stbcnt tai);
my %h; @h{@n} = unpack('I x![l!] l! l! l! l! i x![l!] l! l! l! l! l! l! l! l! i x![l!] l! l! l! l! l! i', $b); $h{state} = $r;
print '{' . join(',', map { '"' . $_ . '":' . $h{$_} } qw(${FIELDS.join(' ')})) . "}\\n";
`;
}

/** Prints one JSON object: the fields above, or {"errno": N} when the call fails (EPERM under a seccomp filter without adjtimex). */
export const TIMEX_SCRIPT = `import ctypes, json
L, I = ctypes.c_long, ctypes.c_int
class Timex(ctypes.Structure):
    _fields_ = [('modes', ctypes.c_uint), ('offset', L), ('freq', L), ('maxerror', L), ('esterror', L), ('status', I),
                ('constant', L), ('precision', L), ('tolerance', L), ('sec', L), ('usec', L), ('tick', L), ('ppsfreq', L),
                ('jitter', L), ('shift', I), ('stabil', L), ('jitcnt', L), ('calcnt', L), ('errcnt', L), ('stbcnt', L),
                ('tai', I), ('pad', I * 11)]
libc = ctypes.CDLL(None, use_errno=True)
t = Timex()
r = libc.adjtimex(ctypes.byref(t))
if r < 0:
    print(json.dumps({'errno': ctypes.get_errno()}))
else:
    print(json.dumps(dict([('state', r)] + [(f, getattr(t, f)) for f in (${FIELDS.slice(1).map((f) => `'${f}'`).join(', ')})])))
`;

/** Parses the script's output; throws PISWARM_ERR_COLLECTOR on anything but the expected integers. */
export function parseTimex(text: string): TimexReading {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PiswarmError('PISWARM_ERR_COLLECTOR', 'timex: the adjtimex reader printed no JSON');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (typeof o.errno === 'number') throw new PiswarmError('PISWARM_ERR_COLLECTOR', `timex: adjtimex failed with errno ${o.errno}${o.errno === 1 ? ' (EPERM: a seccomp filter without adjtimex, such as systemd\'s ProtectClock)' : ''}`);
  const out = {} as Record<(typeof FIELDS)[number], number>;
  for (const f of FIELDS) {
    const x = o[f];
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new PiswarmError('PISWARM_ERR_COLLECTOR', `timex: field ${f} is not an integer`);
    out[f] = x;
  }
  return out;
}

/**
 * Reads adjtimex through perl (where this architecture's syscall number is
 * known), else python3; null when this host has neither (the series are then
 * absent). Bounded: 3 s, 4 KiB of output.
 */
export function readTimex(o: { perl?: string; python?: string; arch?: string } = {}): Promise<TimexReading | null> {
  const perl = o.perl ?? PERL;
  const python = o.python ?? PYTHON;
  const nr = ADJTIMEX_SYSCALL[o.arch ?? process.arch];
  if (nr !== undefined && fs.existsSync(perl)) return run(perl, ['-e', timexPerlScript(nr)]);
  if (fs.existsSync(python)) return run(python, ['-I', '-S', '-c', TIMEX_SCRIPT]);
  return Promise.resolve(null);
}

function run(file: string, args: string[]): Promise<TimexReading> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 3000, maxBuffer: 4096, env: { LC_ALL: 'C' } }, (err, stdout) => {
      if (err) reject(new PiswarmError('PISWARM_ERR_COLLECTOR', `timex: ${file} failed: ${err.message.split('\n')[0]}`, { cause: err }));
      else {
        try {
          resolve(parseTimex(stdout));
        } catch (e) {
          reject(e);
        }
      }
    });
  });
}
