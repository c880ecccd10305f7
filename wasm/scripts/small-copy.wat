 ;; Added by wasm/scripts/build.mjs: every `memory.copy` of the module calls this instead.
 ;; V8 compiles `memory.copy` to a call into C++ (about 8.5 ns each on the benchmark VM,
 ;; against ~1 ns for a load and a store); the module makes ~67 copies per tool call with a
 ;; subscriber, nearly all of them small (struct moves, pieces of event JSON). Up to 32 bytes
 ;; are copied with plain loads and stores here. Every load comes before any store, so
 ;; overlapping ranges copy as `memory.copy` (memmove) does.
 (func $__baton_small_copy (param $d i32) (param $s i32) (param $n i32)
  (local $a i64) (local $b i64) (local $c i64) (local $e i64) (local $x i32) (local $y i32)
  (if (i32.gt_u (local.get $n) (i32.const 32))
   (then (memory.copy (local.get $d) (local.get $s) (local.get $n)) (return)))
  (if (i32.ge_u (local.get $n) (i32.const 16))
   (then
    (local.set $a (i64.load align=1 (local.get $s)))
    (local.set $b (i64.load offset=8 align=1 (local.get $s)))
    (local.set $c (i64.load align=1 (i32.sub (i32.add (local.get $s) (local.get $n)) (i32.const 16))))
    (local.set $e (i64.load align=1 (i32.sub (i32.add (local.get $s) (local.get $n)) (i32.const 8))))
    (i64.store align=1 (local.get $d) (local.get $a))
    (i64.store offset=8 align=1 (local.get $d) (local.get $b))
    (i64.store align=1 (i32.sub (i32.add (local.get $d) (local.get $n)) (i32.const 16)) (local.get $c))
    (i64.store align=1 (i32.sub (i32.add (local.get $d) (local.get $n)) (i32.const 8)) (local.get $e))
    (return)))
  (if (i32.ge_u (local.get $n) (i32.const 8))
   (then
    (local.set $a (i64.load align=1 (local.get $s)))
    (local.set $e (i64.load align=1 (i32.sub (i32.add (local.get $s) (local.get $n)) (i32.const 8))))
    (i64.store align=1 (local.get $d) (local.get $a))
    (i64.store align=1 (i32.sub (i32.add (local.get $d) (local.get $n)) (i32.const 8)) (local.get $e))
    (return)))
  (if (i32.ge_u (local.get $n) (i32.const 4))
   (then
    (local.set $x (i32.load align=1 (local.get $s)))
    (local.set $y (i32.load align=1 (i32.sub (i32.add (local.get $s) (local.get $n)) (i32.const 4))))
    (i32.store align=1 (local.get $d) (local.get $x))
    (i32.store align=1 (i32.sub (i32.add (local.get $d) (local.get $n)) (i32.const 4)) (local.get $y))
    (return)))
  (if (local.get $n)
   (then
    ;; 1 to 3 bytes: the first, the middle and the last.
    (local.set $x (i32.load8_u (local.get $s)))
    (local.set $y (i32.load8_u (i32.add (local.get $s) (i32.shr_u (local.get $n) (i32.const 1)))))
    (local.set $a (i64.load8_u (i32.sub (i32.add (local.get $s) (local.get $n)) (i32.const 1))))
    (i32.store8 (local.get $d) (local.get $x))
    (i32.store8 (i32.add (local.get $d) (i32.shr_u (local.get $n) (i32.const 1))) (local.get $y))
    (i64.store8 (i32.sub (i32.add (local.get $d) (local.get $n)) (i32.const 1)) (local.get $a))))
 )
