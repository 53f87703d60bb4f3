//! The plugin descriptor, its life cycle, and the three entry points the
//! server calls (`Mysql_clone`). Each entry point runs behind the panic
//! barrier and leaves its error in the session's diagnostics area. What an
//! entry point does is the crate root's [`Flows`]: the root exports the
//! plugin with [`export_plugin!`], so this layer never names the flows.

use super::diagnostics;
use super::entry::entry_point;
use super::errors::*;
use super::ffi::{self, st_mysql_plugin, Mysql_clone, MYSQL_PLUGIN, MYSQL_SOCKET, THD};
use super::session::{self, Thd};
use super::{pfs, services, sysvars};
use clone_core::staging::{self, Found};
use clone_core::status::Tracker;
use parking_lot::RwLock;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::path::Path;
use std::ptr::{addr_of_mut, null, null_mut};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// The plugin's version as I_S.PLUGINS shows it (1.0, as the stock plugin).
const PLUGIN_VERSION: c_uint = 0x0100;

/// Which clone plugin this is, as PLUGIN_AUTHOR shows it (the description
/// stays the stock one, which scripts and tests compare).
const AUTHOR: &str = concat!("clone-rs ", env!("CARGO_PKG_VERSION"), "\0");

/// Set while `mysqld --initialize` runs: no performance_schema then.
static BOOTSTRAP: AtomicBool = AtomicBool::new(false);

/// The status of this server's clones (clone_status, clone_progress, and
/// their files): made at plugin init, ended at deinit.
static STATUS: RwLock<Option<Arc<Tracker>>> = RwLock::new(None);

/// The plugin's status of its clones; None outside init and deinit.
pub fn status() -> Option<Arc<Tracker>> {
    STATUS.read().clone()
}

/// What the three entry points do, once the server layer has turned the
/// server's arguments into safe values.
pub trait Flows {
    /// `CLONE LOCAL DATA DIRECTORY = 'dir'`.
    fn local(thd: Thd<'_>, status: Arc<Tracker>, data_dir: &CStr) -> Result<(), Error>;
    /// `CLONE INSTANCE FROM ...` (recipient).
    fn client(thd: Thd<'_>, status: Arc<Tracker>, request: &CloneRequest<'_>) -> Result<(), Error>;
    /// A donor session after COM_CLONE.
    fn server(thd: Thd<'_>) -> Result<(), Error>;
}

/// `CLONE INSTANCE FROM user@host:port IDENTIFIED BY ... [DATA DIRECTORY]
/// [REQUIRE [NO] SSL]`, as the server passes it.
pub struct CloneRequest<'a> {
    pub host: &'a str,
    pub port: u32,
    pub user: &'a CStr,
    pub password: &'a CStr,
    /// None: replace this server's data (in place).
    pub data_dir: Option<&'a CStr>,
    /// mysql_ssl_mode chosen from REQUIRE [NO] SSL.
    pub ssl_mode: i32,
}

/// Exports the plugin (the symbols mysqld looks up in `mysql_clone.so`)
/// with the entry points of `$flows`, a type implementing [`Flows`].
macro_rules! export_plugin {
    ($flows:ty) => {
        static mut DESCRIPTOR: $crate::server::ffi::Mysql_clone = $crate::server::ffi::Mysql_clone {
            interface_version: $crate::server::ffi::MYSQL_CLONE_INTERFACE_VERSION as std::ffi::c_int,
            clone_local: Some($crate::server::plugin::clone_local::<$flows>),
            clone_client: Some($crate::server::plugin::clone_client::<$flows>),
            clone_server: Some($crate::server::plugin::clone_server::<$flows>),
        };

        /// The plugin API version this plugin was built against.
        #[no_mangle]
        pub static _mysql_plugin_interface_version_: std::ffi::c_int = $crate::server::ffi::MYSQL_PLUGIN_INTERFACE_VERSION as std::ffi::c_int;

        /// Lets a server of another plugin API version copy the declarations safely.
        #[no_mangle]
        pub static _mysql_sizeof_struct_st_plugin_: std::ffi::c_int = std::mem::size_of::<$crate::server::ffi::st_mysql_plugin>() as std::ffi::c_int;

        /// The plugins in this library: `clone`, then the all-zero terminator.
        #[no_mangle]
        pub static mut _mysql_plugin_declarations_: [$crate::server::ffi::st_mysql_plugin; 2] =
            [$crate::server::plugin::declaration(std::ptr::addr_of_mut!(DESCRIPTOR)), $crate::server::plugin::TERMINATOR];
    };
}
pub(crate) use export_plugin;

/// The declaration of the `clone` plugin with its descriptor.
pub const fn declaration(descriptor: *mut Mysql_clone) -> st_mysql_plugin {
    st_mysql_plugin {
        type_: ffi::MYSQL_CLONE_PLUGIN as c_int,
        info: descriptor.cast(),
        name: c"clone".as_ptr(),
        author: AUTHOR.as_ptr().cast(),
        descr: c"CLONE PLUGIN".as_ptr(),
        license: ffi::PLUGIN_LICENSE_GPL as c_int,
        init: Some(plugin_init),
        check_uninstall: Some(plugin_check_uninstall),
        deinit: Some(plugin_deinit),
        version: PLUGIN_VERSION,
        status_vars: null_mut(),
        system_vars: addr_of_mut!(sysvars::SYSTEM_VARIABLES).cast(),
        __reserved1: null_mut(),
        flags: 0,
    }
}

/// The all-zero entry that ends the declarations.
pub const TERMINATOR: st_mysql_plugin = st_mysql_plugin {
    type_: 0,
    info: null_mut(),
    name: null(),
    author: null(),
    descr: null(),
    license: 0,
    init: None,
    check_uninstall: None,
    deinit: None,
    version: 0,
    status_vars: null_mut(),
    system_vars: null_mut(),
    __reserved1: null_mut(),
    flags: 0,
};

/// Keeps this library mapped after UNINSTALL PLUGIN. Rust's standard library
/// registers thread-local destructors on the server threads that ran plugin
/// code (e.g. for `thread::current`); if the server unmapped the library,
/// those threads would call into freed code when they exit. A re-INSTALL
/// reuses the mapped library, and init starts every piece of state afresh.
fn pin_library() {
    // SAFETY: Dl_info is plain data; all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr on an address inside this library; dlopen with
    // RTLD_NOLOAD only changes the flags of the already loaded object.
    unsafe {
        if libc::dladdr(pin_library as *const libc::c_void, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE);
        }
    }
}

entry_point! {
fn plugin_init(_plugin: MYSQL_PLUGIN) -> c_int = 1; {
    pin_library();
    if let Err(what) = services::start() {
        eprintln!("clone plugin: cannot acquire service {what}");
        return 1;
    }
    services::log_system(concat!("clone-rs ", env!("CARGO_PKG_VERSION"), ", a drop-in replacement of the clone plugin, is loaded"));
    session::register_instruments();
    // SAFETY: registers this plugin (by name) as the server's clone handler.
    let err = unsafe { ffi::clone_handle_create(c"clone".as_ptr()) };
    if err == ER_INIT_BOOTSTRAP_COMPLETE {
        BOOTSTRAP.store(true, Relaxed);
        return 0;
    }
    if err != 0 {
        services::stop();
        return err;
    }
    BOOTSTRAP.store(false, Relaxed);
    // Status of earlier clones, kept in the data directory (the cwd).
    let status = Tracker::new();
    for note in status.load(Path::new(".")) {
        log::error!("{}", note);
    }
    match staging::after_start(Path::new(".")) {
        Ok(Some(Found::Kept)) => {
            log::warn!("A staged in-place clone did not finish: this server kept its data, and the staging directory is removed");
            status.add_to_failure(staging::DATA_KEPT);
        }
        Ok(Some(Found::KeptForResume(kept))) => {
            log::warn!(
                "A staged in-place clone did not finish: this server kept its data, and what the clone wrote is kept in {} for a resume (the same CLONE INSTANCE statement)",
                kept.display()
            );
            status.add_to_failure(staging::DATA_KEPT);
            status.add_to_failure(&clone_core::reuse::kept_note(&kept));
        }
        Ok(Some(Found::Swapped)) => log::info!("The staged in-place clone is in place; the staging directory is removed"),
        Ok(None) => {}
        Err(e) => log::error!("Cannot clear what a staged in-place clone left in {}: {e}", staging::STAGING_DIR),
    }
    keep_interrupted_clone(&status);
    *STATUS.write() = Some(Arc::new(status));
    // Cloning works without the status tables: a server damaged around
    // the plugin still gets it.
    let tables = if !session::has_current() { Err("no session") } else { services::start_pfs().and_then(pfs::add_tables) };
    if let Err(why) = tables {
        log::error!("performance_schema.clone_status and clone_progress are not available ({why}); the plugin works without them");
    }
    0
}
}

/// A clone into a DATA DIRECTORY that this server's stop cut short is kept
/// for a resume as a clone that failed is (`clone_core::reuse::keep`).
fn keep_interrupted_clone(status: &Tracker) {
    let row = status.snapshot().status;
    if row.state != clone_core::status::State::Failed || row.destination == clone_core::status::LOCAL_INSTANCE {
        return;
    }
    match clone_core::reuse::keep(Path::new(&row.destination)) {
        Ok(Some(kept)) => {
            log::info!("The partial clone into {} is kept in {}: the same CLONE INSTANCE statement resumes it", row.destination, kept.display());
            status.add_to_failure(&clone_core::reuse::kept_note(&kept));
        }
        Ok(None) => {}
        Err(e) => log::error!("Cannot keep the partial clone into {} for a resume: {e}", row.destination),
    }
}

entry_point! {
fn plugin_check_uninstall(plugin: MYSQL_PLUGIN) -> c_int = 1; {
    // SAFETY: refuses while a CLONE statement or donor session holds the plugin.
    unsafe { ffi::clone_handle_check_drop(plugin) }
}
}

entry_point! {
fn plugin_deinit(_plugin: MYSQL_PLUGIN) -> c_int = 0; {
    // SAFETY: drops the handler created in init.
    unsafe { ffi::clone_handle_drop() };
    if let Some(status) = STATUS.write().take() {
        status.shutdown();
    }
    if !BOOTSTRAP.load(Relaxed) {
        if let Some(svc) = services::pfs() {
            pfs::delete_tables(svc);
        }
    }
    services::stop();
    0
}
}

/// The status a clone statement records itself in.
fn running_status() -> Result<Arc<Tracker>, Error> {
    status().ok_or_else(|| Error::internal("the plugin is not initialized"))
}

fn text<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: the server passes NUL-terminated strings or NULL.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().ok()).flatten()
}

/// Runs an entry point's body: raises its error and returns its number,
/// making sure the diagnostics area holds an error whenever the result is
/// not 0 (an error the server only logged, on a connection without the
/// session, becomes ER_INTERNAL_ERROR naming it).
fn entry(thd: *mut THD, body: impl for<'s> FnOnce(Thd<'s>) -> Result<(), Error>) -> c_int {
    // SAFETY: the server's session for this call, alive until it returns.
    let Some(thd) = (unsafe { Thd::from_raw(thd) }) else { return ER_INTERNAL_ERROR };
    match body(thd) {
        Ok(()) => 0,
        Err(e) => {
            let code = e.raise().code();
            if thd.error().0 == 0 {
                diagnostics::raise_str(message::ER_INTERNAL_ERROR, &format!("clone failed with error {code}"));
            }
            code
        }
    }
}

entry_point! {
/// `CLONE LOCAL DATA DIRECTORY = 'dir'` (the server has checked privileges
/// and the path).
pub fn clone_local<F: Flows>(thd: *mut THD, data_dir: *const c_char) -> c_int = ER_INTERNAL_ERROR; {
    entry(thd, |thd| {
        if data_dir.is_null() {
            return Err(Error::with_strs(message::ER_WRONG_VALUE, "path", "NULL"));
        }
        // SAFETY: the server's NUL-terminated path, alive for the statement.
        F::local(thd, running_status()?, unsafe { CStr::from_ptr(data_dir) })
    })
}
}

entry_point! {
/// `CLONE INSTANCE FROM user@host:port ...` (recipient).
pub fn clone_client<F: Flows>(
    thd: *mut THD,
    host: *const c_char,
    port: c_uint,
    user: *const c_char,
    password: *const c_char,
    data_dir: *const c_char,
    ssl_mode: c_int,
) -> c_int = ER_INTERNAL_ERROR; {
    entry(thd, |thd| {
        // SAFETY: the server's NUL-terminated strings, alive for the statement.
        let cstr = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) });
        let request = CloneRequest {
            host: text(host).unwrap_or_default(),
            port,
            user: cstr(user).unwrap_or(c""),
            password: cstr(password).unwrap_or(c""),
            data_dir: cstr(data_dir),
            ssl_mode,
        };
        F::client(thd, running_status()?, &request)
    })
}
}

entry_point! {
/// A donor session after COM_CLONE.
pub fn clone_server<F: Flows>(thd: *mut THD, _socket: MYSQL_SOCKET) -> c_int = ER_INTERNAL_ERROR; {
    entry(thd, F::server)
}
}
