/* C interface of the C++ shim (shim/clone_shim.cc): the only places where the
 * server's ABI is C++ (the Ha_clone_cbk callback class, handlerton's
 * clone_interface, plugin iteration, the clone_protocol and log services).
 * Every function here catches C++ exceptions; every callback into Rust is
 * guarded on the Rust side. Names carry the clone_rs_/cs_ prefix because
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
handlerton *cs_hton_by_legacy_type(THD *thd, unsigned char db_type);

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

/* log_builtins / log_builtins_string handles acquired from the registry. */
void cs_set_log_services(void *log_builtins, void *log_builtins_string);
/* Writes one error-log line under the Clone subsystem. `errcode` is an
 * error-log message code (e.g. ER_CLONE_CLIENT_TRACE) whose format has one
 * %s; `level` is 1 ERROR, 2 WARNING, 3 INFORMATION. */
void cs_log(int level, int errcode, const char *message);
}

#endif
