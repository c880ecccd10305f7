//! The module's allocator: free lists per size class in front of std's dlmalloc.
//!
//! Why: every managed call allocates and frees a handful of small blocks (its events, their
//! names and texts, the scope node, the call record), and std's allocator on
//! `wasm32-unknown-unknown` is dlmalloc, whose frees coalesce neighbours into large chunks
//! that later mallocs split again through its tree bins. Profiled on an awaited tool call with
//! one subscriber, dlmalloc's functions were 8% of the whole call. A size class's free list
//! is a pop and a push.
//!
//! How: requests of at most [`MAX_SMALL`] bytes (and alignment at most 16) round up to one of
//! [`CLASSES`]; a class hands out its most recently freed block, or carves the next one from
//! a [`CHUNK`] it took from dlmalloc. Freed blocks stay in their class, so the module's small
//! memory is bounded by the most each class held at once (wasm memory never shrinks anyway).
//! Everything larger — event batches, queues, big payloads — goes to dlmalloc as before.
//! A reallocation within one class keeps its block (a growing string often does).
//!
//! Only for a module without threads (no `atomics` target feature, which is how the package
//! is built): the state sits in an `UnsafeCell` and nothing here is reentrant across threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes, in bytes: multiples of 8, so every block of a chunk is 8-aligned (and
/// 16-aligned in the classes that are multiples of 16).
const CLASSES: [usize; 16] = [8, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 448, 512];
/// The largest request served from a class.
const MAX_SMALL: usize = 512;
/// Bytes taken from dlmalloc at a time to carve blocks from.
const CHUNK: usize = 8 * 1024;

/// `CLASS_OF[(size + 7) / 8]`: the class of a request of `size` bytes (1..=MAX_SMALL).
const CLASS_OF: [u8; MAX_SMALL / 8 + 1] = {
    let mut table = [0u8; MAX_SMALL / 8 + 1];
    let mut units = 1;
    while units <= MAX_SMALL / 8 {
        let mut c = 0;
        while CLASSES[c] < units * 8 {
            c += 1;
        }
        table[units] = c as u8;
        units += 1;
    }
    table
};

struct Class {
    /// Freed blocks, each holding the address of the next one in its first word.
    free: *mut u8,
    /// The unused rest of the chunk being carved: `[bump, end)`.
    bump: *mut u8,
    end: *mut u8,
}

pub struct Heap(UnsafeCell<[Class; CLASSES.len()]>);

// SAFETY: the module has no threads (see the module docs and the `cfg` where it is installed).
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        const EMPTY: Class = Class { free: ptr::null_mut(), bump: ptr::null_mut(), end: ptr::null_mut() };
        Heap(UnsafeCell::new([EMPTY; CLASSES.len()]))
    }

    /// The class serving `layout`, or `None` for dlmalloc.
    #[inline(always)]
    fn class(size: usize, align: usize) -> Option<usize> {
        // 16-aligned requests (anything holding a `u128`, such as an event and its uuid) round
        // up to a multiple of 16, whose class is a multiple of 16 too (8 and 24 are the only
        // classes that are not), so its blocks, carved from a 16-aligned chunk, are aligned.
        let size = if align > 8 { size.next_multiple_of(16) } else { size };
        if size <= MAX_SMALL && align <= 16 {
            Some(CLASS_OF[size.div_ceil(8)] as usize)
        } else {
            None
        }
    }

    #[inline(always)]
    unsafe fn take(&self, c: usize) -> *mut u8 {
        // SAFETY: one thread, and no caller holds a reference across this call.
        let class = unsafe { &mut (*self.0.get())[c] };
        let block = class.free;
        if !block.is_null() {
            class.free = unsafe { block.cast::<*mut u8>().read() };
            return block;
        }
        let size = CLASSES[c];
        if (class.end as usize) - (class.bump as usize) < size {
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, 16)) };
            if chunk.is_null() {
                return chunk;
            }
            class.bump = chunk;
            class.end = unsafe { chunk.add(CHUNK) };
        }
        let block = class.bump;
        class.bump = unsafe { block.add(size) };
        block
    }

    #[inline(always)]
    unsafe fn give(&self, c: usize, block: *mut u8) {
        // SAFETY: as in `take`; `block` came from this class and is at least 8 bytes.
        let class = unsafe { &mut (*self.0.get())[c] };
        unsafe { block.cast::<*mut u8>().write(class.free) };
        class.free = block;
    }
}

unsafe impl GlobalAlloc for Heap {
    #[inline]
    #[cfg_attr(baton_optimize, optimize(speed))]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Heap::class(layout.size(), layout.align()) {
            Some(c) => unsafe { self.take(c) },
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    #[cfg_attr(baton_optimize, optimize(speed))]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Heap::class(layout.size(), layout.align()) {
            Some(c) => unsafe { self.give(c, ptr) },
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[cfg_attr(baton_optimize, optimize(speed))]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (Heap::class(layout.size(), align), Heap::class(new_size, align)) {
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                let new = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, align)) };
                if !new.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size() {
        for size in 1..=MAX_SMALL {
            let c = Heap::class(size, 8).unwrap();
            assert!(CLASSES[c] >= size && (c == 0 || CLASSES[c - 1] < size), "size {size} -> class {}", CLASSES[c]);
        }
        assert_eq!(Heap::class(MAX_SMALL + 1, 8), None);
        for size in 1..=MAX_SMALL {
            let c = Heap::class(size, 16).unwrap();
            assert!(CLASSES[c] >= size && CLASSES[c] % 16 == 0, "16-aligned size {size} -> class {}", CLASSES[c]);
        }
        assert_eq!(Heap::class(16, 32), None);
    }

    /// Blocks of every class and of dlmalloc's sizes, freed in a scrambled order and taken
    /// again, never overlap, keep what was written into them, and reallocation keeps the
    /// prefix whether it stays in a class, moves between classes or goes to dlmalloc.
    #[test]
    fn blocks_are_distinct_reused_and_reallocated() {
        let heap = Heap::new();
        let sizes: Vec<usize> = (1..=700).step_by(7).chain([1, 8, 9, 512, 513, 4096]).collect();
        for round in 0..3u8 {
            let mut live: Vec<(*mut u8, Layout)> = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                let layout = Layout::from_size_align(size, [4, 8, 16][i % 3]).unwrap();
                let p = unsafe { heap.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % layout.align(), 0);
                unsafe { ptr::write_bytes(p, (i as u8) ^ round, size) };
                live.push((p, layout));
            }
            let mut spans: Vec<(usize, usize)> = live.iter().map(|(p, l)| (*p as usize, *p as usize + l.size())).collect();
            spans.sort();
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "blocks overlap");
            for (i, (p, layout)) in live.iter().enumerate() {
                let bytes = unsafe { std::slice::from_raw_parts(*p, layout.size()) };
                assert!(bytes.iter().all(|&b| b == (i as u8) ^ round), "block {i} was overwritten");
            }
            // Grow or shrink every other block, then free all of them, odd ones first.
            for (i, (p, layout)) in live.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
                let new_size = if i % 4 == 0 { layout.size() * 3 + 1 } else { layout.size().div_ceil(2) };
                let q = unsafe { heap.realloc(*p, *layout, new_size) };
                assert!(!q.is_null());
                let kept = layout.size().min(new_size);
                let bytes = unsafe { std::slice::from_raw_parts(q, kept) };
                assert!(bytes.iter().all(|&b| b == (i as u8) ^ round), "realloc lost block {i}'s bytes");
                *p = q;
                *layout = Layout::from_size_align(new_size, layout.align()).unwrap();
            }
            for (p, layout) in live.iter().skip(1).step_by(2).chain(live.iter().step_by(2)) {
                unsafe { heap.dealloc(*p, *layout) };
            }
        }
    }
}
