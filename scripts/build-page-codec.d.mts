/** Types for build-page-codec.mjs (imported by the page codec test). */
export function pageCodecModuleText(): Promise<string>;
