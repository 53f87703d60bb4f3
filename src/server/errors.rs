//! MySQL error numbers, generated at build time from the source's message
//! files (share/messages_to_clients.txt, share/messages_to_error_log.txt).
#![allow(dead_code, non_upper_case_globals)]

include!(concat!(env!("OUT_DIR"), "/error_codes.rs"));
