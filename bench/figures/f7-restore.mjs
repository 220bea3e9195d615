/**
 * Figure 7: restore of a >= 1 GB database (quick mode: a small one, and it
 * says so): throughput of pagecast's `restore` (as it runs by default, with
 * its quick_check, and without any check) against a plain parallel download of the same objects
 * with the same S3 client, and the peak RSS of each, each in its own process.
 */
import { join } from "node:path";
import { peakRss, runTask } from "../lib/child-task.mjs";
import { profileText, takeProfile } from "../lib/cpu-profile.mjs";
import { ensureBulkDataset } from "../lib/datasets.mjs";
import {
  errorInfo,
  fmtBytes,
  fmtMs,
  fmtRatio,
  row,
  safeRatio,
  unavailableRow,
  verdict,
} from "../lib/figure-kit.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { BUCKET } from "../lib/servers.mjs";

export const figure = {
  id: "7",
  title: "Restore of a >= 1 GB database",
  goal: "throughput >= 0.8x a plain parallel download of the same objects; peak RSS < 256 MB",
};

const MB = 1e6;

export async function run(ctx) {
  const rows = [];
  const details = { delayMs: ctx.opts.throughputDelay };
  const notes = [];
  const bulk = ensureBulkDataset({ dataDir: ctx.dataDir, quick: ctx.quick, log: ctx.log });
  details.dataset = { path: bulk.path, ...bulk.manifest };
  const sizeNote = `${fmtBytes(bulk.manifest.bytes)} database${ctx.quick ? " (quick mode: goal is for >= 1 GB)" : ""}`;
  const prefix = `bulk-${Date.now()}`;
  let keys = [];
  try {
    need(ctx.api, "Replicator", "restore", "S3Store", "listAllLevels", "planRestore");
    // The Replicator publishes the initial snapshot in this process: its peak RSS is evidence too.
    const rssBefore = process.memoryUsage().rss;
    const peakBefore = peakRss();
    const published = await ctx.replicate(bulk.path, prefix);
    details.publish = {
      ...published,
      rssBefore,
      peakRssBefore: peakBefore,
      peakRssAfter: peakRss(),
    };
    const store = ctx.store("direct", prefix);
    try {
      const plan = ctx.api.planRestore(await ctx.api.listAllLevels(store));
      keys = plan.files.map((f) => ({ key: f.key, size: f.size }));
    } finally {
      await store.close();
    }
    details.objects = keys;
    await ctx.servers.setDelay("s3x", ctx.opts.throughputDelay);
    const common = { endpoint: ctx.servers.endpoint("s3x"), bucket: BUCKET, prefix };
    const timeoutMs = ctx.quick ? 120_000 : 900_000;
    const download = await runTask(
      "download-task",
      { ...common, keys, out: join(ctx.scratch, "download.bin"), concurrency: 8 },
      { timeoutMs },
    );
    details.download = download;
    let restoreFull;
    let restoreNoCheck;
    try {
      restoreFull = await runTask(
        "restore-task",
        { ...common, out: join(ctx.scratch, "restore-full.db") },
        { timeoutMs },
      );
      details.restore = restoreFull;
      // This one runs under the CPU profiler: its profile says where restore spends its time.
      const profDir = join(ctx.scratch, "restore-profile");
      restoreNoCheck = await runTask(
        "restore-task",
        { ...common, out: join(ctx.scratch, "restore-nocheck.db"), integrityCheck: "none" },
        { timeoutMs, nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profDir] },
      );
      restoreNoCheck.profile = takeProfile(profDir, 15);
      // The decode threads' own profiles: what each spends its time on.
      restoreNoCheck.workerProfiles = restoreNoCheck.profile?.workers;
      details.restoreWithoutIntegrityCheck = restoreNoCheck;
    } catch (err) {
      details.restoreError = errorInfo(err);
      throw err;
    }
    // The same pair over pagecast's own HTTP stack: what `pagecast restore
    // s3://...` uses with static credentials (FetchS3Store over node:http),
    // against a plain parallel download through that same store.
    const downloadUrl = await runTask(
      "download-task",
      { ...common, keys, out: join(ctx.scratch, "download-url.bin"), concurrency: 8, store: "url" },
      { timeoutMs },
    );
    details.downloadUrl = downloadUrl;
    const restoreUrl = await runTask(
      "restore-task",
      { ...common, out: join(ctx.scratch, "restore-url.db"), store: "url" },
      { timeoutMs },
    );
    details.restoreUrl = restoreUrl;
    const restoreUrlNoCheck = await runTask(
      "restore-task",
      {
        ...common,
        out: join(ctx.scratch, "restore-url-nc.db"),
        integrityCheck: "none",
        store: "url",
      },
      { timeoutMs },
    );
    details.restoreUrlWithoutIntegrityCheck = restoreUrlNoCheck;
    const mbps = (r) => r.bytes / MB / (r.ms / 1000);
    const ratio = safeRatio(mbps(restoreFull), mbps(download));
    const ratioNoCheck = safeRatio(mbps(restoreNoCheck), mbps(download));
    rows.push(
      row({
        fig: "7",
        label: `restore throughput, ${sizeNote}`,
        pagecast: `${mbps(restoreFull).toFixed(1)} MB/s (${fmtMs(restoreFull.ms)}); without its check ${mbps(restoreNoCheck).toFixed(1)} MB/s (${fmtRatio(ratioNoCheck)})`,
        peer: `plain parallel download: ${mbps(download).toFixed(1)} MB/s (${fmtMs(download.ms)})`,
        ratio: fmtRatio(ratio),
        goal: ">= 0.8x",
        verdict: verdict(ratio === null ? null : ratio >= 0.8),
        note: `${keys.length} object(s), ${fmtBytes(restoreFull.bytes)} of LTX, largest ${fmtBytes(Math.max(...keys.map((k) => k.size)))}. Restore CPU profile (run without its check, profiled): main thread: ${profileText(restoreNoCheck.profile)}${(restoreNoCheck.workerProfiles ?? []).map((w, i) => `; decode thread ${i + 1}: ${profileText(w)}`).join("")}`,
      }),
    );
    const ratioUrl = safeRatio(mbps(restoreUrl), mbps(downloadUrl));
    rows.push(
      row({
        fig: "7",
        label: `restore throughput over node:http (pagecast restore s3://, static credentials), ${sizeNote}`,
        pagecast: `${mbps(restoreUrl).toFixed(1)} MB/s (${fmtMs(restoreUrl.ms)}); without its check ${mbps(restoreUrlNoCheck).toFixed(1)} MB/s (${fmtRatio(safeRatio(mbps(restoreUrlNoCheck), mbps(downloadUrl)))})`,
        peer: `plain parallel download through the same FetchS3Store: ${mbps(downloadUrl).toFixed(1)} MB/s (${fmtMs(downloadUrl.ms)})`,
        ratio: fmtRatio(ratioUrl),
        goal: ">= 0.8x",
        verdict: verdict(ratioUrl === null ? null : ratioUrl >= 0.8),
        note: `CPU (all threads): restore ${fmtMs(restoreUrl.cpuMs)} (without its check ${fmtMs(restoreUrlNoCheck.cpuMs)}) vs the download's ${fmtMs(downloadUrl.cpuMs)}; peak RSS ${fmtBytes(restoreUrl.peakRss)}`,
      }),
    );
    // Where the time goes: restore is CPU-bound where the download is not.
    const cores = (await import("node:os")).availableParallelism();
    notes.push(
      `CPU (all threads of the process, user + system): restore ${fmtMs(restoreFull.cpuMs)} ` +
        `(without its check ${fmtMs(restoreNoCheck.cpuMs)}, profiled) vs the plain download's ${fmtMs(download.cpuMs)}, ` +
        `on ${cores} core(s) shared with the S3 emulator serving the bytes; restore decompresses and checksums ` +
        `${fmtBytes(restoreFull.pages * bulk.manifest.pageSize)} of pages and writes them where the download writes ${fmtBytes(restoreFull.bytes)}.`,
    );
    const pub = details.publish;
    notes.push(
      `Publishing the ${fmtBytes(bulk.manifest.bytes)} database (Replicator.start, initial snapshot) took ${fmtMs(pub.ms)}; ` +
        `this process's peak RSS went from ${fmtBytes(pub.peakRssBefore)} to ${fmtBytes(pub.peakRssAfter)} (RSS before: ${fmtBytes(pub.rssBefore)}).`,
    );
    rows.push(
      row({
        fig: "7",
        label: `restore peak RSS, ${sizeNote}`,
        pagecast: fmtBytes(restoreFull.peakRss),
        peer: `plain parallel download: ${fmtBytes(download.peakRss)}`,
        goal: "< 256 MB",
        verdict: verdict(restoreFull.peakRss < 256 * 1024 * 1024),
        note: `process RSS before the restore started: ${fmtBytes(restoreFull.rssBefore)}; largest object ${fmtBytes(Math.max(...keys.map((k) => k.size)))}`,
      }),
    );
  } catch (err) {
    details.error = errorInfo(err);
    rows.push(unavailableRow("7", `restore, ${sizeNote}`, figure.goal, err));
  } finally {
    await ctx.servers.setDelay("s3x", ctx.opts.delay);
    await ctx.dropPrefix(prefix);
  }
  return { rows, details, notes };
}
