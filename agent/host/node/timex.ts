import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { PiswarmError } from '../../../shared/errors.js';

/**
 * The kernel clock discipline, as adjtimex(2) reports it with modes 0 (read
 * only), which is what node_exporter's timex collector serves. The syscall
 * has no file in /proc or /sys and Node.js has no binding for it, and the
 * release holds no native code (one tarball for arm64 and x86-64), so the
 * call goes through the host's Python: ctypes calls libc's adjtimex with
 * `struct timex` declared field by field in C types, which the platform's ABI
 * lays out (208 bytes on 64-bit Linux). Raspberry Pi OS ships python3, and so
 * does every image that runs cloud-init (it is written in Python). Without
 * /usr/bin/python3 the series are absent, as node_exporter's are where the
 * syscall is refused.
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
 * Reads adjtimex through python3; null when this host has no python3 (the
 * series are then absent). Bounded: 3 s, 4 KiB of output.
 */
export function readTimex(python = PYTHON): Promise<TimexReading | null> {
  if (!fs.existsSync(python)) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    execFile(python, ['-I', '-S', '-c', TIMEX_SCRIPT], { timeout: 3000, maxBuffer: 4096, env: { LC_ALL: 'C' } }, (err, stdout) => {
      if (err) reject(new PiswarmError('PISWARM_ERR_COLLECTOR', `timex: ${python} failed: ${err.message.split('\n')[0]}`, { cause: err }));
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
