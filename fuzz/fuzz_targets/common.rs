// Shared by every target (included, since each target is its own crate
// root): the allocation limit and the entry point.
//
// The decoders bound what a lying length prefix can make them allocate
// (the data protocol's limit, about 16 MiB); `Cap` counts what Rust code
// allocates and refuses past four times that, which aborts the run and
// shows as a crash, so an input that gets past a bound is found.

/// What the decoders may hold at once.
const ALLOCATION_LIMIT: usize = 4 * shoal::protocol::MAX_MESSAGE_BYTES;

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> =
    cap::Cap::new(std::alloc::System, ALLOCATION_LIMIT);

/// Makes a libFuzzer target of `shoal::fuzzing::$name`.
macro_rules! shoal_target {
    ($name:ident) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzzing::$name(data));
    };
}
