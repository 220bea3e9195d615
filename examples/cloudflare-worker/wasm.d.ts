/** Wrangler (and workerd) import `.wasm` files as compiled WebAssembly modules. */
declare module "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
declare module "@journeyapps/wa-sqlite/dist/wa-sqlite.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
