/**
 * Types for the parts of `@journeyapps/wa-sqlite/src/FacadeVFS.js` pagecast
 * uses (the package ships no declaration for it).
 */
declare module "@journeyapps/wa-sqlite/src/FacadeVFS.js" {
  import { Base } from "@journeyapps/wa-sqlite/src/VFS.js";

  /** wa-sqlite's JavaScript-friendly VFS base: `j*` methods receive strings and byte views. */
  export class FacadeVFS extends Base {
    constructor(name: string, module: object);
    jOpen(
      filename: string | null,
      pFile: number,
      flags: number,
      pOutFlags: DataView,
    ): number | Promise<number>;
    jDelete(filename: string, syncDir: number): number | Promise<number>;
    jAccess(filename: string, flags: number, pResOut: DataView): number | Promise<number>;
    jFullPathname(filename: string, zOut: Uint8Array): number | Promise<number>;
    jGetLastError(zBuf: Uint8Array): number | Promise<number>;
    jClose(pFile: number): number | Promise<number>;
    jRead(
      pFile: number,
      pData: Uint8Array,
      iOffset: number,
    ): number | Promise<number> | { then(resolve: (rc: number) => void): void };
    jWrite(pFile: number, pData: Uint8Array, iOffset: number): number | Promise<number>;
    jTruncate(pFile: number, size: number): number | Promise<number>;
    jSync(pFile: number, flags: number): number | Promise<number>;
    jFileSize(pFile: number, pSize: DataView): number | Promise<number>;
    jLock(pFile: number, lockType: number): number | Promise<number>;
    jUnlock(pFile: number, lockType: number): number | Promise<number>;
    jCheckReservedLock(pFile: number, pResOut: DataView): number | Promise<number>;
    jFileControl(pFile: number, op: number, pArg: DataView): number | Promise<number>;
    jSectorSize(pFile: number): number | Promise<number>;
    jDeviceCharacteristics(pFile: number): number | Promise<number>;
  }
}
