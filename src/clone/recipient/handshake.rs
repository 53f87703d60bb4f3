//! Meeting the donor: the main and auxiliary connections, INIT with the
//! version and extensions to agree on, the donor's description of itself,
//! and the stock checks that its server can be cloned here.

use super::link::{donor_error, exit, send};
use super::Master;
use crate::server::clone_protocol::{self, Connection, DonorAddress};
use crate::server::config;
use crate::server::errors::*;
use crate::server::session::Thd;
use crate::server::storage::{self, Mode};
use clone_core::checks;
use clone_core::protocol::extension::{Caps, Version};
use clone_core::protocol::{self, Command, InitPayload};
use clone_core::recipient::{plugin_library, DonorInfo, InitStep, PluginLibrary};
use std::path::Path;

/// The donor may be silent this long past clone_ddl_timeout during INIT
/// (backup lock wait, loading tablespaces).
const INIT_EXTRA_TIMEOUT_S: u32 = 300;

impl Master<'_, '_> {
    /// Opens the main and the auxiliary connection. Offering zstd, they go
    /// without the server's compression; a stock donor makes the recipient
    /// start over with it.
    pub(super) fn connect(&self) -> Result<Connection, Error> {
        let thd = self.thd;
        let address = &self.clone.address;
        let first = DonorAddress { compress: address.compress && !self.clone.offer.contains(Caps::ZSTD), ..address.clone() };
        let main = Connection::open(Some(thd), &first)?;
        match self.clone.open_watched(&first) {
            Ok(ack) => {
                *self.clone.ack_link.lock() = Some(ack);
                Ok(main)
            }
            Err(e) => {
                main.close(Some(thd), true, false);
                Err(e)
            }
        }
    }

    /// Connects if `main` is not open, and INIT: version negotiation, the
    /// donor's description, and the checks.
    pub(super) fn introduce(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let conn = match main {
            Some(conn) => conn,
            None => main.insert(self.connect()?),
        };
        let thd = self.thd;
        let clone = &mut self.clone;
        clone.engines = storage::apply_engines(thd);
        let mut version_locators = Vec::new();
        for &engine in &clone.engines {
            match engine.apply_begin(thd, None, Mode::Version, clone.apply_dir()) {
                Ok(v) => version_locators.push(v),
                Err(e) => {
                    for handle in version_locators {
                        let _ = handle.apply_end(thd, e.code());
                    }
                    return Err(e);
                }
            }
        }
        let locators: Vec<_> = version_locators.iter().map(|h| protocol::Locator { db_type: h.engine().db_type(), bytes: h.locator() }).collect();
        let wanted = self.clone.offer;
        let mut info = self.init(conn, Version::ours(protocol::VERSION_CURRENT, wanted), &locators);
        // zstd wanted and not granted: the server's compression instead.
        if wanted.contains(Caps::ZSTD) && info.as_ref().is_ok_and(|i| !i.version.granted().contains(Caps::ZSTD)) && self.clone.address.compress {
            info = self.init_compressed(conn, &locators);
        }
        for handle in version_locators {
            let _ = handle.apply_end(thd, 0);
        }
        let mut info = info?;
        let clone = &mut self.clone;
        clone.version = info.version;
        let peer = match info.version.ours {
            Some(granted) => {
                if granted.contains(Caps::ZSTD) {
                    // zstd replaces the server's compression on every connection to come.
                    clone.address.compress = false;
                }
                format!("The donor is this plugin; agreed: {granted}")
            }
            None => format!("The donor speaks the stock protocol {:#06x}", info.version.stock),
        };
        log::info!("{peer}");
        // Connections to come ask for what this donor grants.
        clone.offer = info.version.granted();
        clone.tell(&format!("Connected to {}:{} and authenticated. {peer}", clone.address.host.to_string_lossy(), clone.address.port));
        clone.reconnect_minutes = info.reconnect_minutes();
        self.validate(&info)?;
        let clone = &mut self.clone;
        clone.tell("The donor's version, platform, plugins, character sets and collations, configuration and max_allowed_packet suit this server");
        clone.donor_locators = std::mem::take(&mut info.locators);
        clone.donor_gtids = info.gtid_executed.take();
        clone.donor_uuid = info.server_uuid.take();
        if clone.donor_locators.len() != clone.engines.len() {
            return Err(Error::protocol("Wrong Clone RPC response: locator count"));
        }
        self.offer_kept_copy(conn)
    }

    /// INIT with `version`, and the donor's answer.
    fn init(&self, main: &mut Connection, version: Version, locators: &[protocol::Locator<'_>]) -> Result<DonorInfo, Error> {
        let init = Command::Init(InitPayload { version: version.encode(), ddl_word: self.clone.ddl_word(), locators: locators.to_vec() });
        send(main, self.thd, true, &init).and_then(|()| self.read_init_response(main))
    }

    /// The donor did not grant zstd: it is stock (or ours without it). The
    /// recipient leaves that clone and starts over as the stock recipient
    /// does, on a connection with the server's compression and with a
    /// stock INIT.
    fn init_compressed(&self, main: &mut Connection, locators: &[protocol::Locator<'_>]) -> Result<DonorInfo, Error> {
        log::info!("The donor does not compress with zstd: connecting again with the server's compression");
        exit(main, self.thd, true)?;
        let fresh = Connection::open(Some(self.thd), &self.clone.address)?;
        // Replaced as the session's clone socket: closed without the session.
        std::mem::replace(main, fresh).close(None, false, false);
        let ack = self.clone.open_watched(&self.clone.address)?;
        if let Some(mut old) = self.clone.ack_link.lock().replace(ack) {
            let left = exit(&mut old, self.thd, false).is_ok();
            old.close(None, !left, false);
        }
        self.init(main, Version::stock(protocol::VERSION_CURRENT), locators)
    }

    fn read_init_response(&self, main: &mut Connection) -> Result<DonorInfo, Error> {
        let timeout = self.clone.settings.ddl_timeout.saturating_add(INIT_EXTRA_TIMEOUT_S);
        let mut info = DonorInfo::default();
        loop {
            let (packet, _) = main.receive(Some(self.thd), true, timeout)?;
            match info.take(packet) {
                InitStep::More => {}
                InitStep::Done => return Ok(info),
                InitStep::Refused { code, message } => return Err(donor_error(code, message)),
                InitStep::Wrong(what) => return Err(Error::protocol(what)),
            }
        }
    }

    /// The stock checks, in the stock order; each failing one raises its
    /// error at once (the statement shows them all), and the first one
    /// fails the clone.
    fn validate(&self, info: &DonorInfo) -> Result<(), Error> {
        let thd = self.thd;
        if info.is_too_old() {
            return Err(Error::protocol("Donor protocol version is too old"));
        }
        let mut first = 0;
        let mut note = |checked: Result<(), Error>| {
            if let Err(e) = checked {
                let code = e.raise().code();
                if first == 0 {
                    first = code;
                }
            }
        };
        let plugin_dir = config::variable(thd, "plugin_dir").unwrap_or_default();
        let excluded = config::excluded_plugins();
        for (name, soname) in info.distinct_plugins() {
            let text = String::from_utf8_lossy(name);
            if checks::is_excluded(&excluded, &text) {
                if !clone_protocol::plugin_installed(thd, name) {
                    log::info!("The donor's plugin {text} is not checked: clone_exclude_plugins_list names it");
                    self.clone.tell(&format!("The donor's plugin {text} is not active here and not needed: clone_exclude_plugins_list names it"));
                }
                continue;
            }
            if !plugin_is_available(thd, name, soname.as_deref(), &plugin_dir) {
                note(Err(Error::with_str(message::ER_CLONE_PLUGIN_MATCH, text)));
            }
        }
        note(clone_protocol::validate_collations(thd, &info.collations));
        note(clone_protocol::validate_configs(thd, &info.configs));
        let own_version = config::variable(thd, "version").unwrap_or_default();
        let (donor_version, donor_lts) = info.release();
        let recipient_lts = info.recipient_lts(crate::server::MYSQL_VERSION_MATURITY);
        note(clone_protocol::validate_version(&own_version, &donor_version, recipient_lts, donor_lts));
        note(super::super::check_packet_size(thd));
        if first == 0 {
            Ok(())
        } else {
            Err(Error::reported(first))
        }
    }
}

/// Whether the donor's plugin can run here: installed, built in on the
/// donor, or a library in our plugin directory that loads.
fn plugin_is_available(thd: Thd, name: &[u8], soname: Option<&[u8]>, plugin_dir: &str) -> bool {
    if clone_protocol::plugin_installed(thd, name) {
        return true;
    }
    match plugin_library(soname) {
        PluginLibrary::BuiltIn => true,
        PluginLibrary::Refused => false,
        PluginLibrary::Load(so) => clone_protocol::library_loads(&Path::new(plugin_dir).join(so)),
    }
}
