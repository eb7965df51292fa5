import si from 'systeminformation';

/**
 * What the host is: board model and revision, OS release, architecture. It
 * comes from systeminformation, whose Raspberry Pi revision-code table (model,
 * memory, manufacturer, SoC for every board since the 2012 Model B) is exactly
 * the kind of well-kept data we would otherwise copy by hand. It spawns small
 * commands (dmidecode, lsb_release, ...), so it runs once at start and then
 * rarely, never on a scrape; anything it cannot find is an empty label.
 */
export interface HostInventory {
  manufacturer: string;
  model: string;
  revision: string;
  os: string;
  os_release: string;
  os_codename: string;
  arch: string;
}

type SiSystem = Awaited<ReturnType<typeof si.system>>;
type SiOs = Awaited<ReturnType<typeof si.osInfo>>;

const clean = (v: unknown): string => (typeof v === 'string' && v !== '-' ? v.trim() : '');

/** Pure: systeminformation's answers to the labels we export. */
export function inventoryFrom(sys: Partial<SiSystem>, osi: Partial<SiOs>): HostInventory {
  const pi = sys.raspberry;
  return {
    manufacturer: clean(pi?.manufacturer) || clean(sys.manufacturer),
    model: clean(sys.model),
    // On a Pi: the board revision (e.g. 1.4) rather than the raw revision code.
    revision: clean(pi?.revision) || clean(sys.version),
    os: clean(osi.distro),
    os_release: clean(osi.release),
    os_codename: clean(osi.codename),
    arch: clean(osi.arch),
  };
}

export async function readInventory(): Promise<HostInventory> {
  const [sys, osi] = await Promise.all([si.system(), si.osInfo()]);
  return inventoryFrom(sys, osi);
}
