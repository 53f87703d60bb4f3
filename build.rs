//! Build script of mysql-clone-sys: generates the server ABI bindings from the MySQL source tree,
//! compiles the C++ shim, and derives MySQL error numbers from the source's
//! message files. Nothing of MySQL is copied into this repository.
//!
//! The source tree is found through `MYSQL_SOURCE_DIR`, defaulting to the
//! folder `ci/setup-env.sh` unpacks it into (`.cache/mysql-source`); the
//! configured headers (my_config.h) through `MYSQL_BUILD_DIR`, defaulting to
//! the `builddir` that Debian's source tarball carries.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    // The build script of mysql-clone-sys, which sits in the repository.
    let sys = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let manifest = sys.parent().map(Path::to_path_buf).unwrap_or(sys);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let src = env::var_os("MYSQL_SOURCE_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join(".cache/mysql-source"));
    let build_dir = env::var_os("MYSQL_BUILD_DIR").map(PathBuf::from).unwrap_or_else(|| src.join("builddir"));
    println!("cargo:rerun-if-env-changed=MYSQL_SOURCE_DIR");
    println!("cargo:rerun-if-env-changed=MYSQL_BUILD_DIR");
    for input in ["build.rs", "include/clone_plugin.h", "shim/clone_shim.h", "shim/clone_shim.cc"] {
        println!("cargo:rerun-if-changed={}", manifest.join(input).display());
    }

    if !src.join("include/mysql/plugin_clone.h").exists() {
        panic!("MySQL source tree not found at {} (run ci/setup-env.sh, or set MYSQL_SOURCE_DIR)", src.display());
    }
    if !build_dir.join("include/my_config.h").exists() {
        panic!("{} has no include/my_config.h (a configured MySQL build directory; set MYSQL_BUILD_DIR)", build_dir.display());
    }
    let includes = [build_dir.join("include"), src.clone(), src.join("include"), src.join("libs")];

    generate_bindings(&manifest, &out, &includes);
    generate_error_codes(&src, &out);
    compile_shim(&manifest, &out, &includes);
}

fn generate_bindings(manifest: &Path, out: &Path, includes: &[PathBuf]) {
    let mut builder = bindgen::Builder::default()
        .header(manifest.join("include/clone_plugin.h").to_string_lossy())
        .clang_args(["-x", "c++", "-std=c++20", "-DMYSQL_DYNAMIC_PLUGIN"])
        .clang_args(includes.iter().map(|p| format!("-I{}", p.display())))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .layout_tests(true)
        .derive_default(true)
        .generate_comments(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .opaque_type("std::.*")
        .opaque_type("THD")
        .opaque_type("handlerton")
        .opaque_type("Ha_clone_cbk");
    for item in [
        // plugin ABI
        "st_mysql_plugin",
        "Mysql_clone",
        "SYS_VAR",
        "TYPELIB",
        "st_mysql_value",
        "MYSQL_SOCKET",
        "MYSQL_PLUGIN_INTERFACE_VERSION",
        "MYSQL_CLONE_PLUGIN",
        "MYSQL_CLONE_INTERFACE_VERSION",
        "MYSQL_VERSION_MATURITY",
        "PLUGIN_LICENSE_GPL",
        "PLUGIN_VAR_.*",
        "MYSQL_VALUE_TYPE_.*",
        "thd_killed",
        "thd_get_thread_id",
        // plugin services and component services
        "plugin_registry_service_st",
        "thd_alloc_service_st",
        "s_mysql_registry",
        "s_mysql_mysql_backup_lock",
        "Backup_lock_service_type",
        "PFS_engine_table_share_proxy",
        "PFS_engine_table_proxy",
        "PSI_field",
        "PSI_ulong",
        "PSI_ulonglong",
        "PSI_table_handle",
        "PSI_pos",
        "s_mysql_pfs_plugin_table_v1",
        "s_mysql_pfs_plugin_column_integer_v1",
        "s_mysql_pfs_plugin_column_bigint_v1",
        "s_mysql_pfs_plugin_column_string_v2",
        "s_mysql_pfs_plugin_column_timestamp_v2",
        "s_mysql_pfs_plugin_column_text_v1",
        "s_mysql_mysql_system_variable_reader",
        "s_mysql_mysql_system_variable_update_integer",
        "s_mysql_mysql_string_factory",
        "s_mysql_mysql_string_converter",
        "PFS_HA_ERR_END_OF_FILE",
        "PFS_READONLY",
        "PFS_ENGINE_TABLE_SHARE_.*",
        // server functions with a C-compatible signature
        "my_error",
        "clone_handle_create",
        "clone_handle_drop",
        "clone_handle_check_drop",
        // our shim
        "cs_.*",
        "CS_.*",
    ] {
        builder = builder.allowlist_type(item).allowlist_function(item).allowlist_var(item);
    }
    let bindings = builder.generate().unwrap_or_else(|e| panic!("bindgen failed on include/clone_plugin.h: {e}"));
    bindings.write_to_file(out.join("bindings.rs")).expect("cannot write bindings.rs");
}

fn compile_shim(manifest: &Path, out: &Path, includes: &[PathBuf]) {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(manifest.join("shim/clone_shim.cc"))
        .std("c++2b")
        .define("MYSQL_SERVER", None)
        .define("MYSQL_DYNAMIC_PLUGIN", None)
        .define("NDEBUG", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag("-fvisibility=hidden")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true);
    // error_codes.h first: the shim's error numbers come from it.
    build.include(out);
    for inc in includes {
        build.include(inc);
    }
    build.compile("clone_shim");
}

/// Numbers MySQL's error names the way its `comp_err` tool does: each message
/// file starts at a base (1000 for messages to clients, 10000 for the error
/// log), `start-error-number N` moves the counter, and every `ER_`, `WARN_`,
/// `OBSOLETE_ER_` or `OBSOLETE_WARN_` entry takes the next number. Writes
/// them for Rust (error_codes.rs) and for the shim (error_codes.h, in a
/// namespace of its own: the server's headers name a few of them too). Each
/// message to clients also becomes a `Message` typed by the arguments its
/// English text takes (error_messages.rs), and the numbers whose messages
/// take none are listed (for codes only known at run time).
fn generate_error_codes(src: &Path, out: &Path) {
    let mut code = String::from("// Generated by build.rs from the MySQL source's message files.\n");
    let mut header = String::from("// Generated by build.rs from the MySQL source's message files.\n#pragma once\nnamespace mysql_errors {\n");
    let mut messages = String::from("// Generated by build.rs from share/messages_to_clients.txt.\nuse super::{args, Message};\n");
    let mut no_arguments = Vec::new();
    for (file, base) in [("share/messages_to_clients.txt", 1000), ("share/messages_to_error_log.txt", 10000)] {
        let path = src.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut next: i32 = base;
        // The entry whose English text is still to come.
        let mut pending: Option<(String, i32)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("start-error-number") {
                next = rest.trim().parse().expect("bad start-error-number");
                continue;
            }
            if let Some(english) = line.trim_start().strip_prefix("eng ") {
                if let (Some((name, number)), true) = (pending.take(), base == 1000) {
                    let shape = argument_shape(english.trim().trim_matches('"'));
                    writeln!(messages, "pub const {name}: Message<args::{shape}> = Message::new({number});").unwrap();
                    if shape == "None" {
                        no_arguments.push(number);
                    }
                }
                continue;
            }
            let is_entry = ["ER_", "WARN_", "OBSOLETE_ER_", "OBSOLETE_WARN_"].iter().any(|p| line.starts_with(p));
            if !is_entry {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            pending = None;
            if !name.starts_with("OBSOLETE_") {
                writeln!(code, "pub const {name}: i32 = {next};").unwrap();
                writeln!(header, "constexpr int {name} = {next};").unwrap();
                pending = Some((name.to_string(), next));
            }
            next += 1;
        }
    }
    header.push_str("}  // namespace mysql_errors\n");
    writeln!(messages, "/// The numbers whose messages take no arguments, in order.\npub const NO_ARGUMENTS: &[i32] = &{no_arguments:?};").unwrap();
    fs::write(out.join("error_codes.rs"), code).expect("cannot write error_codes.rs");
    fs::write(out.join("error_codes.h"), header).expect("cannot write error_codes.h");
    fs::write(out.join("error_messages.rs"), messages).expect("cannot write error_messages.rs");
}

/// The arguments a printf-style message takes, as the name of a marker type
/// in mysql-clone-sys's `args`: `None`, `Str`, `StrStr`, `Int` (a `%d` or
/// `%u`), `IntInt`, `StrIntStr`, or `Other` (any other shape, which no
/// raise function takes).
fn argument_shape(message: &str) -> &'static str {
    let mut shape = String::new();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.next_if_eq(&'%').is_some() {
            continue;
        }
        let mut spec = String::new();
        while let Some(c) = chars.next_if(|c| "-+ #0123456789.*hlzjtL".contains(*c)) {
            spec.push(c);
        }
        let conversion = chars.next().unwrap_or('?');
        let plain = !spec.contains('*') && !spec.contains(|c| "hlzjtL".contains(c));
        shape.push(match conversion {
            's' if plain => 's',
            'd' | 'u' if plain => 'd',
            _ => '?',
        });
    }
    match shape.as_str() {
        "" => "None",
        "s" => "Str",
        "ss" => "StrStr",
        "d" => "Int",
        "dd" => "IntInt",
        "sds" => "StrIntStr",
        _ => "Other",
    }
}
