/**
 * What kind of disk a whole block device is, for the `piswarm.storage` node
 * label. SD cards and eMMC both appear as mmcblkN; the MMC core's sysfs
 * `device/type` ("SD" or "MMC") tells them apart. A USB disk is a SCSI disk
 * (sdX) whose sysfs path runs through a USB host controller.
 */
export type StorageKind = 'sd' | 'emmc' | 'usb' | 'nvme' | 'other';

export const STORAGE_KINDS: readonly StorageKind[] = ['sd', 'emmc', 'usb', 'nvme', 'other'];

/**
 * Pure. `sysPath`: the resolved target of /sys/block/<device> (null when it
 * could not be read); `mmcType`: the text of /sys/block/<device>/device/type
 * (null when absent). Null means unknown, never a guess: an sdX disk whose
 * path cannot be read may be USB or SATA, an mmcblk without its type an SD
 * card or eMMC.
 */
export function storageKind(device: string, sysPath: string | null, mmcType: string | null): StorageKind | null {
  if (/^mmcblk\d+$/.test(device)) {
    const type = mmcType?.trim().toUpperCase();
    return type === 'SD' ? 'sd' : type === 'MMC' ? 'emmc' : null;
  }
  if (/^nvme\d+n\d+$/.test(device)) return 'nvme';
  if (/^sd[a-z]+$/.test(device)) {
    if (sysPath === null) return null;
    return /\/usb\d*\//.test(sysPath) ? 'usb' : 'other';
  }
  return device === '' ? null : 'other';
}
