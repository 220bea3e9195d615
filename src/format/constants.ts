/** Size of the fixed LTX header, in bytes. */
export const LTX_HEADER_SIZE = 100;
/** Size of a page frame header (pgno u32 + flags u16), in bytes. */
export const LTX_PAGE_HEADER_SIZE = 6;
/** Size of the LTX trailer (post-apply checksum + file checksum), in bytes. */
export const LTX_TRAILER_SIZE = 16;
/** Size of the big-endian u64 that follows the page index varints, in bytes. */
export const LTX_INDEX_SIZE_FIELD_SIZE = 8;
/** Size of the compressed-size prefix that follows a page header flagged with {@link PAGE_HEADER_FLAG_SIZE}. */
export const LTX_PAGE_SIZE_PREFIX_SIZE = 4;

/** The four magic bytes every LTX file starts with. */
export const LTX_MAGIC = "LTX1";

/** Header flag: database checksums are not tracked (pre/post-apply checksums are zero). */
export const HEADER_FLAG_NO_CHECKSUM = 0x2;
/** All header flag bits that are currently valid. */
export const HEADER_FLAG_MASK = HEADER_FLAG_NO_CHECKSUM;
/** Page header flag: a 4-byte compressed size follows and the payload is an LZ4 *block*. */
export const PAGE_HEADER_FLAG_SIZE = 0x1;

/** Bit 63, set on every non-zero LTX checksum so that a valid checksum is never zero. */
export const CHECKSUM_FLAG = 1n << 63n;

/** Smallest SQLite page size. */
export const MIN_PAGE_SIZE = 512;
/** Largest SQLite page size. */
export const MAX_PAGE_SIZE = 65536;

/** SQLite's largest database size in pages (SQLITE_MAX_PAGE_COUNT): larger commits are corrupt. */
export const MAX_PAGE_COUNT = 0xfffffffe;

/** Byte offset of SQLite's lock ("pending byte") page; that page is never stored. */
export const PENDING_BYTE = 0x40000000;

/** Largest TXID pagecast can represent (TXIDs are JS numbers). */
export const MAX_TXID = Number.MAX_SAFE_INTEGER;
