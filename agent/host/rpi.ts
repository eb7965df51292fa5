/**
 * Raspberry Pi firmware throttling state, read from sysfs instead of spawning
 * `vcgencmd get_throttled`. The bits are the firmware's (raspberrypi.com docs,
 * "vcgencmd get_throttled"): 0-3 describe now, 16-19 the same conditions since boot.
 */
export const THROTTLE_CONDITIONS = ['under_voltage', 'frequency_capped', 'throttled', 'soft_temp_limit'] as const;
export type ThrottleCondition = (typeof THROTTLE_CONDITIONS)[number];

export interface ThrottleFlags {
  now: Record<ThrottleCondition, boolean>;
  /** Null when the source only knows the present (the rpi_volt hwmon alarm). */
  sinceBoot: Record<ThrottleCondition, boolean> | null;
}

export type ThrottleState =
  | { source: 'firmware'; raw: number; flags: ThrottleFlags }
  | { source: 'hwmon'; flags: ThrottleFlags }
  | { source: 'absent' };

/**
 * The firmware driver prints the word as bare hex (`%x`, e.g. "50005"); vcgencmd
 * prints "throttled=0x50005". Accept both. Returns null for anything else.
 */
export function parseGetThrottled(text: string): number | null {
  const m = /^(?:throttled=)?(?:0x)?([0-9a-f]{1,8})$/i.exec(text.trim());
  return m ? parseInt(m[1] as string, 16) : null;
}

export function throttleFlags(raw: number): ThrottleFlags {
  const bit = (n: number) => ((raw >>> n) & 1) === 1;
  const at = (offset: number) =>
    Object.fromEntries(THROTTLE_CONDITIONS.map((c, i) => [c, bit(offset + i)])) as Record<ThrottleCondition, boolean>;
  return { now: at(0), sinceBoot: at(16) };
}

/** The rpi_volt hwmon device (kernel 5.x+) only reports a live under-voltage alarm. */
export function hwmonUnderVoltage(alarmText: string): ThrottleFlags | null {
  const t = alarmText.trim();
  if (t !== '0' && t !== '1') return null;
  return {
    now: { under_voltage: t === '1', frequency_capped: false, throttled: false, soft_temp_limit: false },
    sinceBoot: null,
  };
}

export interface ThermalZone {
  zone: string;
  type: string;
  celsius: number;
}

/** sysfs thermal `temp` is millidegrees Celsius; some drivers return negative or error values on read. */
export function parseThermalZone(zone: string, typeText: string, tempText: string): ThermalZone | null {
  const milli = Number(tempText.trim());
  if (tempText.trim() === '' || !Number.isFinite(milli)) return null;
  return { zone, type: typeText.trim(), celsius: milli / 1000 };
}
