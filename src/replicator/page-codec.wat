;; Restore's page codec: LZ4 block decoding and CRC-64/ISO, the two loops that
;; dominate restore's CPU time, in WebAssembly (64-bit registers and unchecked
;; 8-byte copies make both several times faster than the JavaScript versions in
;; src/format, which stay the reference and the fallback).
;;
;; Compiled by scripts/build-page-codec.mjs into page-codec-wasm.ts (checked by
;; test/replicator/page-codec.test.ts). Memory layout is the caller's: the
;; CRC-64 slicing-by-16 tables at [0, 32768) (table t, entry i at (t*256+i)*8,
;; filled by the caller; tables 0-7 also serve the 8-byte step), then whatever
;; buffers the caller places.
;;
;; The LZ4 decoder mirrors lz4DecodeInto (src/format/lz4-block.ts) check for
;; check; errors are negative results:
;;   -1 block ends before its last sequence   -2 truncated literal length
;;   -3 literals overflow the output          -4 literals overrun the input
;;   -5 truncated match offset                -6 invalid match offset
;;   -7 truncated match length                -8 match overflows the output
;; `pages` leaves the failing frame's result in `error`: a negative code, or
;; the output end it reached when a page decoded to another size.
(module
  (memory (export "memory") 1)
  (global $err (mut i32) (i32.const 0))
  (func (export "error") (result i32) (global.get $err))

  (func $lz4 (export "lz4") (param $sp i32) (param $sEnd i32) (param $dp i32) (param $dEnd i32) (param $win i32) (result i32)
    (local $token i32) (local $lit i32) (local $x i32) (local $off i32) (local $ml i32) (local $m i32) (local $end i32)
    (loop $seq
      (if (i32.ge_u (local.get $sp) (local.get $sEnd)) (then (return (i32.const -1))))
      (local.set $token (i32.load8_u (local.get $sp)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
      (block $match
      ;; Fast path for the common short sequence (no length bytes: at most 14
      ;; literals and an 18-byte match) far from both ends: fixed-size 8-byte
      ;; copies, no per-step checks. At least 18 input bytes left means the
      ;; literals and the offset lie inside the block and a match follows; 40
      ;; output bytes left hold the 16-byte literal copy and the 24-byte match
      ;; copy. Offsets below 8 (overlapping repeats) and invalid offsets take
      ;; the general match path below, which reports the same errors.
      (if (i32.and
            (i32.and (i32.lt_u (local.get $token) (i32.const 0xf0))
                     (i32.ne (i32.and (local.get $token) (i32.const 15)) (i32.const 15)))
            (i32.and (i32.ge_u (i32.sub (local.get $sEnd) (local.get $sp)) (i32.const 18))
                     (i32.ge_u (i32.sub (local.get $dEnd) (local.get $dp)) (i32.const 40))))
        (then
          (local.set $lit (i32.shr_u (local.get $token) (i32.const 4)))
          (i64.store (local.get $dp) (i64.load (local.get $sp)))
          (i64.store offset=8 (local.get $dp) (i64.load offset=8 (local.get $sp)))
          (local.set $sp (i32.add (local.get $sp) (local.get $lit)))
          (local.set $dp (i32.add (local.get $dp) (local.get $lit)))
          (local.set $off (i32.load16_u (local.get $sp)))
          (br_if $match
            (i32.or (i32.lt_u (local.get $off) (i32.const 8))
                    (i32.gt_u (local.get $off) (i32.sub (local.get $dp) (local.get $win)))))
          (local.set $sp (i32.add (local.get $sp) (i32.const 2)))
          (local.set $m (i32.sub (local.get $dp) (local.get $off)))
          ;; Each 8-byte step reads only below where it writes (offset >= 8).
          (i64.store (local.get $dp) (i64.load (local.get $m)))
          (i64.store offset=8 (local.get $dp) (i64.load offset=8 (local.get $m)))
          (i64.store offset=16 (local.get $dp) (i64.load offset=16 (local.get $m)))
          (local.set $dp
            (i32.add (local.get $dp) (i32.add (i32.and (local.get $token) (i32.const 15)) (i32.const 4))))
          (br $seq)))
      (local.set $lit (i32.shr_u (local.get $token) (i32.const 4)))
      (if (i32.eq (local.get $lit) (i32.const 15))
        (then
          (loop $more
            (if (i32.ge_u (local.get $sp) (local.get $sEnd)) (then (return (i32.const -2))))
            (local.set $x (i32.load8_u (local.get $sp)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
            (local.set $lit (i32.add (local.get $lit) (local.get $x)))
            (if (i32.gt_u (local.get $lit) (i32.sub (local.get $dEnd) (local.get $dp))) (then (return (i32.const -3))))
            (br_if $more (i32.eq (local.get $x) (i32.const 255))))))
      (if (i32.gt_u (local.get $lit) (i32.sub (local.get $dEnd) (local.get $dp))) (then (return (i32.const -3))))
      (if (i32.gt_u (local.get $lit) (i32.sub (local.get $sEnd) (local.get $sp))) (then (return (i32.const -4))))
      (if (i32.and
            (i32.le_u (local.get $lit) (i32.const 16))
            (i32.and
              (i32.ge_u (i32.sub (local.get $sEnd) (local.get $sp)) (i32.const 16))
              (i32.ge_u (i32.sub (local.get $dEnd) (local.get $dp)) (i32.const 16))))
        (then
          (i64.store (local.get $dp) (i64.load (local.get $sp)))
          (i64.store offset=8 (local.get $dp) (i64.load offset=8 (local.get $sp))))
        (else (memory.copy (local.get $dp) (local.get $sp) (local.get $lit))))
      (local.set $sp (i32.add (local.get $sp) (local.get $lit)))
      (local.set $dp (i32.add (local.get $dp) (local.get $lit)))
      (if (i32.eq (local.get $sp) (local.get $sEnd)) (then (return (local.get $dp)))))
      ;; The match: $sp at its offset.
      (if (i32.lt_u (i32.sub (local.get $sEnd) (local.get $sp)) (i32.const 2)) (then (return (i32.const -5))))
      (local.set $off (i32.load16_u (local.get $sp)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 2)))
      (if (i32.or (i32.eqz (local.get $off)) (i32.gt_u (local.get $off) (i32.sub (local.get $dp) (local.get $win))))
        (then (return (i32.const -6))))
      (local.set $ml (i32.and (local.get $token) (i32.const 15)))
      (if (i32.eq (local.get $ml) (i32.const 15))
        (then
          (loop $more
            (if (i32.ge_u (local.get $sp) (local.get $sEnd)) (then (return (i32.const -7))))
            (local.set $x (i32.load8_u (local.get $sp)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 1)))
            (local.set $ml (i32.add (local.get $ml) (local.get $x)))
            (if (i32.gt_u (i32.add (local.get $ml) (i32.const 4)) (i32.sub (local.get $dEnd) (local.get $dp))) (then (return (i32.const -8))))
            (br_if $more (i32.eq (local.get $x) (i32.const 255))))))
      (local.set $ml (i32.add (local.get $ml) (i32.const 4)))
      (if (i32.gt_u (local.get $ml) (i32.sub (local.get $dEnd) (local.get $dp))) (then (return (i32.const -8))))
      (local.set $m (i32.sub (local.get $dp) (local.get $off)))
      (local.set $end (i32.add (local.get $dp) (local.get $ml)))
      (if (i32.and (i32.ge_u (local.get $off) (i32.const 8))
                   (i32.ge_u (i32.sub (local.get $dEnd) (local.get $end)) (i32.const 8)))
        (then
          (if (i32.and (i32.ge_u (local.get $off) (local.get $ml)) (i32.ge_u (local.get $ml) (i32.const 64)))
            (then (memory.copy (local.get $dp) (local.get $m) (local.get $ml)))
            (else
              ;; 8 bytes per step, each step reads only below where it writes (offset >= 8)
              (loop $copy
                (i64.store (local.get $dp) (i64.load (local.get $m)))
                (local.set $dp (i32.add (local.get $dp) (i32.const 8)))
                (local.set $m (i32.add (local.get $m) (i32.const 8)))
                (br_if $copy (i32.lt_u (local.get $dp) (local.get $end)))))))
        (else
          (if (i32.ge_u (local.get $off) (local.get $ml))
            (then (memory.copy (local.get $dp) (local.get $m) (local.get $ml)))
            (else
              ;; Overlapping: repeat the last `off` bytes. One byte at a time
              ;; up to $x: the first whole periods reaching 8 bytes ($lit of
              ;; them), or the whole match when it is that short or the last
              ;; 8-byte step would overshoot the output. Then 8 bytes per step
              ;; from $lit back (the output repeats with any multiple of the
              ;; period): runs of zeros (offset 1) fill a page's free space.
              (local.set $lit
                (i32.mul (local.get $off)
                         (i32.div_u (i32.add (local.get $off) (i32.const 7)) (local.get $off))))
              (local.set $x
                (select (i32.add (local.get $dp) (local.get $lit)) (local.get $end)
                  (i32.and (i32.gt_u (local.get $ml) (local.get $lit))
                           (i32.ge_u (i32.sub (local.get $dEnd) (local.get $end)) (i32.const 8)))))
              (loop $rep
                (i32.store8 (local.get $dp) (i32.load8_u (local.get $m)))
                (local.set $dp (i32.add (local.get $dp) (i32.const 1)))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))
                (br_if $rep (i32.lt_u (local.get $dp) (local.get $x))))
              (if (i32.lt_u (local.get $dp) (local.get $end))
                (then
                  (local.set $m (i32.sub (local.get $dp) (local.get $lit)))
                  (loop $rep8
                    (i64.store (local.get $dp) (i64.load (local.get $m)))
                    (local.set $dp (i32.add (local.get $dp) (i32.const 8)))
                    (local.set $m (i32.add (local.get $m) (i32.const 8)))
                    (br_if $rep8 (i32.lt_u (local.get $dp) (local.get $end))))))))))
      (local.set $dp (local.get $end))
      (br $seq))
    (unreachable))

  ;; CRC-64/ISO of [p, p+n) continuing from `crc` (finalized value, as Go's crc64.Update).
;; Slicing-by-16: two 8-byte loads per step halve the steps of the dependency
;; chain through `c` (about 1.6x the slicing-by-8 loop on 4 KiB pages); then
;; at most one 8-byte step and single bytes.
  (func $crc (export "crc") (param $crc i64) (param $p i32) (param $n i32) (result i64)
    (local $c i64) (local $end i32) (local $end8 i32) (local $end16 i32) (local $x i64) (local $y i64)
    (local.set $c (i64.xor (local.get $crc) (i64.const -1)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $end8 (i32.sub (local.get $end) (i32.and (local.get $n) (i32.const 7))))
    (local.set $end16 (i32.sub (local.get $end) (i32.and (local.get $n) (i32.const 15))))
    (if (i32.lt_u (local.get $p) (local.get $end16))
      (then
        (loop $w16
          (local.set $x (i64.xor (local.get $c) (i64.load (local.get $p))))
          (local.set $y (i64.load offset=8 (local.get $p)))
          (local.set $c
            (i64.xor (i64.xor (i64.xor (i64.xor (i64.load offset=30720 (i32.shl (i32.and (i32.wrap_i64 (local.get $x)) (i32.const 255)) (i32.const 3))) (i64.load offset=28672 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 8))) (i32.const 255)) (i32.const 3)))) (i64.xor (i64.load offset=26624 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 16))) (i32.const 255)) (i32.const 3))) (i64.load offset=24576 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 24))) (i32.const 255)) (i32.const 3))))) (i64.xor (i64.xor (i64.load offset=22528 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 32))) (i32.const 255)) (i32.const 3))) (i64.load offset=20480 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 40))) (i32.const 255)) (i32.const 3)))) (i64.xor (i64.load offset=18432 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 48))) (i32.const 255)) (i32.const 3))) (i64.load offset=16384 (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 56))) (i32.const 3)))))) (i64.xor (i64.xor (i64.xor (i64.load offset=14336 (i32.shl (i32.and (i32.wrap_i64 (local.get $y)) (i32.const 255)) (i32.const 3))) (i64.load offset=12288 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 8))) (i32.const 255)) (i32.const 3)))) (i64.xor (i64.load offset=10240 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 16))) (i32.const 255)) (i32.const 3))) (i64.load offset=8192 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 24))) (i32.const 255)) (i32.const 3))))) (i64.xor (i64.xor (i64.load offset=6144 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 32))) (i32.const 255)) (i32.const 3))) (i64.load offset=4096 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 40))) (i32.const 255)) (i32.const 3)))) (i64.xor (i64.load offset=2048 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 48))) (i32.const 255)) (i32.const 3))) (i64.load (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $y) (i64.const 56))) (i32.const 3))))))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $w16 (i32.lt_u (local.get $p) (local.get $end16))))))
    (if (i32.lt_u (local.get $p) (local.get $end8))
      (then
        (loop $w
          (local.set $c (i64.xor (local.get $c) (i64.load (local.get $p))))
          (local.set $c
            (i64.xor
              (i64.xor
                (i64.xor
                  (i64.load offset=14336 (i32.shl (i32.and (i32.wrap_i64 (local.get $c)) (i32.const 255)) (i32.const 3)))
                  (i64.load offset=12288 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 8))) (i32.const 255)) (i32.const 3))))
                (i64.xor
                  (i64.load offset=10240 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 16))) (i32.const 255)) (i32.const 3)))
                  (i64.load offset=8192 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 24))) (i32.const 255)) (i32.const 3)))))
              (i64.xor
                (i64.xor
                  (i64.load offset=6144 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 32))) (i32.const 255)) (i32.const 3)))
                  (i64.load offset=4096 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 40))) (i32.const 255)) (i32.const 3))))
                (i64.xor
                  (i64.load offset=2048 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 48))) (i32.const 255)) (i32.const 3)))
                  (i64.load (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 56))) (i32.const 3)))))))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br_if $w (i32.lt_u (local.get $p) (local.get $end8))))))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (loop $b
          (local.set $c
            (i64.xor
              (i64.load (i32.shl (i32.and (i32.xor (i32.wrap_i64 (local.get $c)) (i32.load8_u (local.get $p))) (i32.const 255)) (i32.const 3)))
              (i64.shr_u (local.get $c) (i64.const 8))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br_if $b (i32.lt_u (local.get $p) (local.get $end))))))
    (i64.xor (local.get $c) (i64.const -1)))

  ;; Decodes `count` frames described at `frames` (u32 triples: pgno, payload pointer, payload length)
  ;; into consecutive pages at `out`, writing each page's CRC-64 (i64) at `crcs`.
  ;; Returns -1 when all decoded, else the failing frame's index (error code in `error`).
  (func (export "pages") (param $count i32) (param $frames i32) (param $out i32) (param $pageSize i32) (param $crcs i32) (result i32)
    (local $i i32) (local $f i32) (local $at i32) (local $r i32) (local $src i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $f (i32.add (local.get $frames) (i32.mul (local.get $i) (i32.const 12))))
        (local.set $at (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $pageSize))))
        (local.set $src (i32.load offset=4 (local.get $f)))
        (local.set $r (call $lz4 (local.get $src) (i32.add (local.get $src) (i32.load offset=8 (local.get $f)))
                                (local.get $at) (i32.add (local.get $at) (local.get $pageSize)) (local.get $at)))
        (if (i32.ne (local.get $r) (i32.add (local.get $at) (local.get $pageSize)))
          (then
            (global.set $err (local.get $r))
            (return (local.get $i))))
        (i64.store (i32.add (local.get $crcs) (i32.shl (local.get $i) (i32.const 3)))
          (call $crc (i64.const 0) (local.get $at) (local.get $pageSize)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const -1))
)
