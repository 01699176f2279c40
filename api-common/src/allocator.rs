//! The memory allocator of every Shop process: mimalloc instead of the
//! system's.
//!
//! Declared here, in the library every service links, so that each binary
//! (`shop`, `command-api`, `query-api`, `projectors`), its tests and its
//! benchmarks run on the same allocator without declaring it themselves.
//!
//! Why: under 64 clients placing orders, glibc's malloc and free (with
//! their arena consolidation) were about a fifth of the command API's CPU
//! on a 2-core machine: a request, its events and their JSON are many
//! short-lived allocations made on one thread and freed on another.
//! mimalloc's thread-local free lists make those cheap. `BENCHMARKS.md`
//! has the figures before and after (#15).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
