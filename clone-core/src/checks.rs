//! Checks made before a clone starts that need no server: the format of
//! `clone_valid_donor_list` and whether a donor is on it, and the plugins
//! `clone_exclude_plugins_list` lets a recipient do without.

/// One `host:port` entry of `clone_valid_donor_list`.
#[derive(Debug, PartialEq, Eq)]
pub struct Donor {
    pub host: String,
    pub port: u32,
}

/// Parses `clone_valid_donor_list` the way the stock plugin does: entries
/// separated by `,`, no spaces anywhere, each `host:port` with the host
/// before the first `:` (non-empty) and the port all decimal digits. The
/// host is lower-cased (the SQL parser lower-cases the statement's host).
/// Returns None for a malformed list.
pub fn parse_donor_list(list: &str) -> Option<Vec<Donor>> {
    if list.is_empty() || list.contains(' ') {
        return None;
    }
    list.split(',')
        .map(|entry| {
            let (host, port) = entry.split_once(':')?;
            if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // The stock parser reads the port as an int; a number out of
            // that range is as malformed as a non-number.
            let port: i32 = port.parse().ok()?;
            Some(Donor { host: host.to_ascii_lowercase(), port: port as u32 })
        })
        .collect()
}

/// Whether `host:port` (host as the SQL parser passed it) is on the list.
/// No name resolution: `127.0.0.1` and `localhost` are different donors.
pub fn donor_is_listed(list: Option<&str>, host: &str, port: u32) -> bool {
    let Some(donors) = list.and_then(parse_donor_list) else {
        return false;
    };
    donors.iter().any(|d| d.host == host && d.port == port)
}

/// Plugins a clone cannot work without, which `clone_exclude_plugins_list`
/// may not name (Percona Server's list, as far as 9.7.4 has these plugins):
/// the storage engines and logs the cloned data is made of (InnoDB, MEMORY,
/// binlog, performance_schema), the keyring bridge that decrypts encrypted
/// tablespaces (daemon_keyring_proxy_plugin), group_replication (a member
/// provisioned by clone must rejoin its group), and clone itself. Percona's
/// keyring_file and keyring_vault are not plugins in 9.7.4 (the keyring is
/// a component there), so they cannot be active on a donor.
pub const REQUIRED_PLUGINS: [&str; 7] = ["daemon_keyring_proxy_plugin", "binlog", "performance_schema", "memory", "innodb", "group_replication", "clone"];

/// Why a `clone_exclude_plugins_list` value is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ExcludeListError {
    /// An empty name (a leading, trailing or doubled comma).
    Malformed,
    /// A plugin the clone needs.
    Required(String),
}

/// Parses `clone_exclude_plugins_list`: plugin names separated by commas,
/// spaces around a name ignored, compared without regard to case (as the
/// server names plugins). Empty text is an empty list.
pub fn parse_exclude_list(list: &str) -> Result<Vec<String>, ExcludeListError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|name| {
            let name = name.trim();
            if name.is_empty() {
                return Err(ExcludeListError::Malformed);
            }
            if REQUIRED_PLUGINS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(ExcludeListError::Required(name.to_owned()));
            }
            Ok(name.to_ascii_lowercase())
        })
        .collect()
}

/// Whether the donor's plugin `name` is on the (already checked) list.
pub fn is_excluded(list: &[String], name: &str) -> bool {
    list.iter().any(|l| l.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_are_names_and_never_a_required_plugin() {
        assert_eq!(parse_exclude_list(""), Ok(vec![]));
        assert_eq!(parse_exclude_list(" audit_log , EXAMPLE"), Ok(vec!["audit_log".into(), "example".into()]));
        assert!(is_excluded(&parse_exclude_list("EXAMPLE").unwrap(), "example"));
        assert!(!is_excluded(&parse_exclude_list("EXAMPLE").unwrap(), "example2"));
        for bad in ["a,", ",a", "a,,b", " , "] {
            assert_eq!(parse_exclude_list(bad), Err(ExcludeListError::Malformed), "{bad:?}");
        }
        assert_eq!(parse_exclude_list("example,InnoDB"), Err(ExcludeListError::Required("InnoDB".into())));
        for required in REQUIRED_PLUGINS {
            assert_eq!(parse_exclude_list(required), Err(ExcludeListError::Required(required.into())));
        }
    }

    #[test]
    fn accepts_well_formed_lists() {
        let l = parse_donor_list("Host1:3306,127.0.0.1:13000").unwrap();
        assert_eq!(l, vec![Donor { host: "host1".into(), port: 3306 }, Donor { host: "127.0.0.1".into(), port: 13000 },]);
    }

    #[test]
    fn rejects_malformed_lists() {
        for bad in ["", " ", "h:1, h:2", "h:1,", ",h:1", "h:1,,h:2", "h", ":3306", "h:", "h:33a", "h:-1", "h:99999999999999999999"] {
            assert_eq!(parse_donor_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_is_text_before_first_colon() {
        // So an IPv6 literal cannot be listed: its port part is not numeric.
        assert_eq!(parse_donor_list("::1:3306"), None);
    }

    #[test]
    fn matching_is_exact_on_lowercased_host_and_port() {
        let list = Some("LocalHost:3306,127.0.0.1:13001");
        assert!(donor_is_listed(list, "localhost", 3306));
        assert!(donor_is_listed(list, "127.0.0.1", 13001));
        assert!(!donor_is_listed(list, "127.0.0.1", 3306));
        assert!(!donor_is_listed(list, "localhost", 13001));
        assert!(!donor_is_listed(None, "localhost", 3306));
        assert!(!donor_is_listed(Some("bad list"), "bad", 0));
    }
}
