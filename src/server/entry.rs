//! The panic barrier: every function the server or a storage engine calls
//! is defined with [`entry_point!`], which runs its body behind [`guard`],
//! so that unwinding never reaches C++.

use super::diagnostics;
use super::errors::message;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body` and returns its result; a panic becomes `on_panic` after an
/// ER_INTERNAL_ERROR in the diagnostics area.
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let what =
                payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown".into());
            let _ = catch_unwind(|| diagnostics::raise_str(message::ER_INTERNAL_ERROR, &format!("clone plugin panic: {what}")));
            on_panic
        }
    }
}

/// Defines an `unsafe extern "C" fn` for the server or an engine to call,
/// its body behind [`guard`]: `fn name(args) -> T = on_panic; { body }`.
/// The only way this crate writes such a function (a unit test checks).
macro_rules! entry_point {
    ($(#[$attr:meta])* $vis:vis fn $name:ident $(<$gen:ident: $bound:path>)? ($($arg:tt: $ty:ty),* $(,)?) $(-> $ret:ty)? = $on_panic:expr; $body:block) => {
        $(#[$attr])*
        $vis unsafe extern "C" fn $name $(<$gen: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
            $crate::server::entry::guard($on_panic, || $body)
        }
    };
}
pub(crate) use entry_point;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `extern "C" fn` defined in this crate comes from
    /// `entry_point!` (a function pointer type, `extern "C" fn(`, is fine).
    #[test]
    fn every_function_the_server_calls_is_guarded() {
        let mut unguarded = Vec::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (n, line) in text.lines().enumerate() {
                    let defines =
                        line.split("extern \"C\" fn ").skip(1).any(|rest| rest.starts_with(|c: char| c.is_alphabetic() || c == '_') || rest.starts_with('$'));
                    if defines && !path.ends_with("server/entry.rs") {
                        unguarded.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(unguarded.is_empty(), "extern \"C\" functions not defined with entry_point!: {unguarded:?}");
    }
}
