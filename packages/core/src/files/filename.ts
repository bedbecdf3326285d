import { invalidValue } from '../errors.js'

/**
 * The longest filename batchkit keeps, in UTF-8 bytes: 255, the limit of common filesystems (ext4,
 * APFS, NTFS in UTF-16 units), so a file saved under its name can always be written back to disk.
 */
export const MAX_FILENAME_BYTES = 255

/** Throws a 400 (`param: 'file'`) for a filename over {@link MAX_FILENAME_BYTES}. */
export function checkFilename(filename: string): void {
  const bytes = Buffer.byteLength(filename, 'utf8')
  if (bytes > MAX_FILENAME_BYTES) {
    throw invalidValue(
      'file',
      `The filename is ${bytes} bytes long; filenames can be at most ${MAX_FILENAME_BYTES} bytes (UTF-8).`,
    )
  }
}
