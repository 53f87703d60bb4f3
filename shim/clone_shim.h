/* C interface of the C++ shim (shim/clone_shim.cc): the only places where the
 * server's ABI is C++ (the Ha_clone_cbk callback class, handlerton's
 * clone_interface, plugin iteration, the clone_protocol and log services).
 * Every function that calls a server routine able to throw catches C++
 * exceptions and returns a MySQL error number instead (the accessors of the
 * callback object, the handlerton and the setters read or store fields, and
 * throw nothing); every callback into Rust is guarded on the Rust side. Names carry the clone_rs_/cs_ prefix because
 * mysqld's exported symbols would win over same-named plugin symbols. */
#ifndef CLONE_RS_SHIM_H
#define CLONE_RS_SHIM_H

#include <stddef.h>
#include <stdint.h>

class THD;
struct handlerton;
class Ha_clone_cbk;

extern "C" {

/* ---- callback object handed to the storage engine ---- */

/* Implemented in Rust (src/server/storage.rs); `ctx` is the Rust handler. */
int clone_rs_cbk_file(void *ctx, Ha_clone_cbk *cbk, int from_fd, unsigned len);
int clone_rs_cbk_buffer(void *ctx, Ha_clone_cbk *cbk, unsigned char *buf,
                        unsigned len);
int clone_rs_cbk_apply_file(void *ctx, Ha_clone_cbk *cbk, int to_fd);
int clone_rs_cbk_apply_buffer(void *ctx, Ha_clone_cbk *cbk,
                              unsigned char **buf, unsigned *len);

/* Flag bits reported by cs_cbk_flags (the engine's view of the chunk). */
enum cs_cbk_flag {
  CS_CBK_ACK = 1,
  CS_CBK_OS_BUFFER_CACHE = 2,
  CS_CBK_ZERO_COPY = 4,
  CS_CBK_SECURE = 8,
  CS_CBK_STATE_CHANGE = 16
};

Ha_clone_cbk *cs_cbk_new(void *ctx);
void cs_cbk_free(Ha_clone_cbk *cbk);
handlerton *cs_cbk_hton(Ha_clone_cbk *cbk);
unsigned cs_cbk_loc_index(Ha_clone_cbk *cbk);
void cs_cbk_set_loc_index(Ha_clone_cbk *cbk, unsigned idx);
void cs_cbk_set_client_buffer_size(Ha_clone_cbk *cbk, unsigned size);
const unsigned char *cs_cbk_data_desc(Ha_clone_cbk *cbk, unsigned *len);
void cs_cbk_set_data_desc(Ha_clone_cbk *cbk, const unsigned char *desc,
                          unsigned len);
void cs_cbk_clear_flags(Ha_clone_cbk *cbk);
/* Bit set of cs_cbk_flag; *estimate gets the state-change byte estimate. */
int cs_cbk_flags(Ha_clone_cbk *cbk, uint64_t *estimate);
const char *cs_cbk_source_name(Ha_clone_cbk *cbk);
const char *cs_cbk_dest_name(Ha_clone_cbk *cbk);

/* ---- storage engines' clone interface ---- */

/* Which side of the clone interface an engine implements. */
enum cs_clone_side { CS_SIDE_COPY = 1, CS_SIDE_APPLY = 2 };

/* Calls `visit(ctx, hton)` for every ready storage engine that implements
 * the given side, in the server's plugin order. */
typedef void (*cs_hton_visitor)(void *ctx, handlerton *hton);
void cs_foreach_clone_engine(THD *thd, int side, cs_hton_visitor visit,
                             void *ctx);
unsigned char cs_hton_db_type(handlerton *hton);
bool cs_hton_is_innodb(handlerton *hton);

int cs_clone_begin(handlerton *hton, THD *thd, const unsigned char **loc,
                   unsigned *loc_len, unsigned *task_id, int mode);
int cs_clone_copy(handlerton *hton, THD *thd, const unsigned char *loc,
                  unsigned loc_len, unsigned task_id, Ha_clone_cbk *cbk);
int cs_clone_ack(handlerton *hton, THD *thd, const unsigned char *loc,
                 unsigned loc_len, unsigned task_id, int in_err,
                 Ha_clone_cbk *cbk);
int cs_clone_end(handlerton *hton, THD *thd, const unsigned char *loc,
                 unsigned loc_len, unsigned task_id, int in_err);
int cs_clone_apply_begin(handlerton *hton, THD *thd, const unsigned char **loc,
                         unsigned *loc_len, unsigned *task_id, int mode,
                         const char *data_dir);
int cs_clone_apply(handlerton *hton, THD *thd, const unsigned char *loc,
                   unsigned loc_len, unsigned task_id, int in_err,
                   Ha_clone_cbk *cbk);
int cs_clone_apply_end(handlerton *hton, THD *thd, const unsigned char *loc,
                       unsigned loc_len, unsigned task_id, int in_err);

/* ---- performance_schema instruments ---- */

/* Registers the clone thread, statement and memory instruments (category
 * "clone"). */
void cs_psi_register(void);
/* Counts `bytes` of transfer buffers mapped (> 0) or unmapped (< 0) under
 * memory/clone/data. */
void cs_psi_memory_account(long long bytes);
/* Thread keys for worker sessions, statement keys for refining the
 * session's statement: thread/clone/local-task, thread/clone/client-task,
 * statement/clone/local, statement/clone/client, statement/clone/server. */
enum cs_psi_instrument {
  CS_PSI_LOCAL_TASK = 0,
  CS_PSI_CLIENT_TASK = 1,
  CS_PSI_STATEMENT_LOCAL = 2,
  CS_PSI_STATEMENT_CLIENT = 3,
  CS_PSI_STATEMENT_SERVER = 4
};
unsigned cs_psi_key(int instrument);

/* ---- sessions ---- */

THD *cs_current_thd(void);

/* ---- services acquired by Rust, used from C++ ---- */

/* `clone_protocol` service handle (my_h_service) acquired from the registry. */
void cs_set_clone_protocol(void *service);
/* Creates a THD for a new worker thread (NULL on failure). */
THD *cs_worker_thd_start(unsigned thread_key, unsigned statement_key);
void cs_worker_thd_finish(THD *thd);
/* Refines the current statement of `thd` to `statement_key`. */
void cs_statement_refine(THD *thd, unsigned statement_key);
/* The error in `thd`'s diagnostics area, or 0 and NULL. */
unsigned cs_thd_error(THD *thd, const char **message);
/* The session's authenticated account as "priv_user@priv_host" into `buf`
   (at most `len` bytes, not NUL-terminated); returns its full length, or 0
   if it cannot be read. */
size_t cs_thd_account(THD *thd, char *buf, size_t len);
/* Adds a note (SHOW WARNINGS) to the statement. */
void cs_push_note(THD *thd, unsigned code, const char *text);
/* Whether a supervisor (mysqld_safe, systemd) restarts this server: the
   server restarts itself after an in-place clone only then. */
bool cs_server_is_supervised(void);

/* ---- clone_protocol: the donor's side of a clone connection ---- */

/* Reads the next command on the session's own connection (waits for it). */
int cs_get_command(THD *thd, unsigned char *command, unsigned char **buf,
                   size_t *len);
/* Sends one response message; `secure` refuses a non-TLS connection. */
int cs_send_response(THD *thd, bool secure, unsigned char *packet,
                     size_t len);
/* Sends the diagnostics area's error as response `err_cmd` (nothing when
 * fatal) and clears it. */
int cs_send_error(THD *thd, unsigned char err_cmd, bool fatal);

/* ---- clone_protocol: the recipient's connections to a donor ---- */

/* A connection to a donor, switched to the clone protocol. */
struct cs_conn;
/* NULL on failure (the error is in thd's diagnostics area). `ssl_mode` is a
 * mysql_ssl_mode value; key/cert/ca may be NULL. */
cs_conn *cs_connect(THD *thd, const char *host, unsigned port,
                    const char *user, const char *password, int ssl_mode,
                    const char *ssl_key, const char *ssl_cert,
                    const char *ssl_ca, bool compress);
int cs_send_command(THD *thd, cs_conn *conn, bool set_active,
                    unsigned char command, unsigned char *buf, size_t len);
/* `*packet` stays valid until the next read on the connection. */
int cs_get_response(THD *thd, cs_conn *conn, bool set_active,
                    unsigned timeout_s, unsigned char **packet, size_t *len,
                    size_t *net_len);
/* Sends KILL CONNECTION for `victim`'s donor session over `conn`. */
int cs_kill(cs_conn *conn, cs_conn *victim);
/* The connection's socket descriptor (-1 if unknown), to shut it down from
   another thread. */
int cs_socket(const cs_conn *conn);
/* Closes and frees the connection. */
void cs_disconnect(THD *thd, cs_conn *conn, bool fatal, bool clear_error);

/* ---- clone_protocol: metadata and validation ---- */

typedef void (*cs_string_visitor)(void *ctx, const char *s, size_t len);
/* Every collation name known to the data dictionary. */
int cs_get_charsets(THD *thd, cs_string_visitor visit, void *ctx);
/* Global variable values, in key order (visit gets each value). */
int cs_get_configs(THD *thd, const char *const *keys, size_t n,
                   cs_string_visitor visit, void *ctx);
int cs_validate_charsets(THD *thd, const char *const *names,
                         const size_t *lens, size_t n);
int cs_validate_configs(THD *thd, const char *const *keys,
                        const size_t *key_lens, const char *const *values,
                        const size_t *value_lens, size_t n);
int cs_validate_version(const char *recipient, size_t recipient_len,
                        const char *donor, size_t donor_len,
                        bool recipient_lts, bool donor_lts);

/* Every ready plugin of any type, in the server's order: name and shared
 * object (empty for built-ins). */
typedef void (*cs_plugin_visitor)(void *ctx, const char *name, size_t name_len,
                                  const char *soname, size_t soname_len);
int cs_foreach_plugin(THD *thd, cs_plugin_visitor visit, void *ctx);
/* Whether a plugin of that name is installed here (any type). */
bool cs_plugin_installed(THD *thd, const char *name, size_t len);

/* log_builtins / log_builtins_string handles acquired from the registry. */
void cs_set_log_services(void *log_builtins, void *log_builtins_string);
/* Writes one error-log line under the Clone subsystem. `errcode` is an
 * error-log message code (e.g. ER_CLONE_CLIENT_TRACE) whose format has one
 * %s; `level` is 1 ERROR, 2 WARNING, 3 INFORMATION. */
void cs_log(int level, int errcode, const char *message);
}

#endif
