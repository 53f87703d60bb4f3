// The C++ half of the server boundary. See clone_shim.h for the contract.
// Kept deliberately thin: no clone logic lives here, only ABI translation.

#define LOG_COMPONENT_TAG "Clone"
#define LOG_SUBSYSTEM_TAG "Clone"

#include "clone_shim.h"

#include <exception>

#include "mysql/my_loglevel.h"
#include "mysql/components/services/clone_protocol_service.h"
#include "mysql/components/services/log_builtins.h"
#include "mysql/plugin.h"
#include "sql/handler.h"
#include "sql/sql_plugin.h"

// Defined by the plugin, as the server's log helpers expect; filled in by
// cs_set_log_services once Rust has acquired the services.
SERVICE_TYPE(log_builtins) *log_bi = nullptr;
SERVICE_TYPE(log_builtins_string) *log_bs = nullptr;

// mysqld exports this C++ function; it has no public header.
THD *thd_get_current_thd();

namespace {

SERVICE_TYPE_NO_CONST(clone_protocol) *clone_protocol = nullptr;

// Runs `body`, turning any C++ exception into a MySQL error number so that
// no exception ever unwinds into Rust frames.
template <typename F>
int guarded(F body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return 1037;  // ER_OUTOFMEMORY
  } catch (...) {
    return 1815;  // ER_INTERNAL_ERROR
  }
}

// The callback object InnoDB drives. Each virtual forwards to Rust.
class Rust_clone_cbk final : public Ha_clone_cbk {
 public:
  explicit Rust_clone_cbk(void *ctx) : m_ctx(ctx) {}

  int file_cbk(Ha_clone_file from, uint len) override {
    return clone_rs_cbk_file(m_ctx, this, from.file_desc, len);
  }
  int buffer_cbk(uchar *from, uint len) override {
    return clone_rs_cbk_buffer(m_ctx, this, from, len);
  }
  int apply_file_cbk(Ha_clone_file to) override {
    return clone_rs_cbk_apply_file(m_ctx, this, to.file_desc);
  }
  int apply_buffer_cbk(uchar *&to, uint &len) override {
    return clone_rs_cbk_apply_buffer(m_ctx, this, &to, &len);
  }

 private:
  void *m_ctx;
};

const Clone_interface_t &iface(handlerton *hton) {
  return hton->clone_interface;
}

struct Engine_walk {
  int side;
  cs_hton_visitor visit;
  void *ctx;
};

bool visit_engine(THD *, plugin_ref plugin, void *arg) {
  auto *walk = static_cast<Engine_walk *>(arg);
  auto *hton = plugin_data<handlerton *>(plugin);
  if (hton == nullptr) return false;
  const auto &ci = iface(hton);
  bool implements = walk->side == CS_SIDE_COPY ? ci.clone_begin != nullptr
                                               : ci.clone_apply_begin != nullptr;
  if (implements) walk->visit(walk->ctx, hton);
  return false;
}

}  // namespace

extern "C" {

Ha_clone_cbk *cs_cbk_new(void *ctx) {
  try {
    return new Rust_clone_cbk(ctx);
  } catch (...) {
    return nullptr;
  }
}
void cs_cbk_free(Ha_clone_cbk *cbk) { delete cbk; }
handlerton *cs_cbk_hton(Ha_clone_cbk *cbk) { return cbk->get_hton(); }
unsigned cs_cbk_loc_index(Ha_clone_cbk *cbk) { return cbk->get_loc_index(); }
void cs_cbk_set_loc_index(Ha_clone_cbk *cbk, unsigned idx) {
  cbk->set_loc_index(idx);
}
void cs_cbk_set_client_buffer_size(Ha_clone_cbk *cbk, unsigned size) {
  cbk->set_client_buffer_size(size);
}
const unsigned char *cs_cbk_data_desc(Ha_clone_cbk *cbk, unsigned *len) {
  return cbk->get_data_desc(len);
}
void cs_cbk_set_data_desc(Ha_clone_cbk *cbk, const unsigned char *desc,
                          unsigned len) {
  cbk->set_data_desc(desc, len);
}
void cs_cbk_clear_flags(Ha_clone_cbk *cbk) { cbk->clear_flags(); }
int cs_cbk_flags(Ha_clone_cbk *cbk, uint64_t *estimate) {
  int flags = 0;
  uint64_t est = 0;
  if (cbk->is_ack_needed()) flags |= CS_CBK_ACK;
  if (cbk->is_os_buffer_cache()) flags |= CS_CBK_OS_BUFFER_CACHE;
  if (cbk->is_zero_copy()) flags |= CS_CBK_ZERO_COPY;
  if (cbk->is_secure()) flags |= CS_CBK_SECURE;
  if (cbk->is_state_change(est)) flags |= CS_CBK_STATE_CHANGE;
  if (estimate != nullptr) *estimate = est;
  return flags;
}
const char *cs_cbk_source_name(Ha_clone_cbk *cbk) {
  return cbk->get_source_name();
}
const char *cs_cbk_dest_name(Ha_clone_cbk *cbk) { return cbk->get_dest_name(); }

void cs_foreach_clone_engine(THD *thd, int side, cs_hton_visitor visit,
                             void *ctx) {
  Engine_walk walk{side, visit, ctx};
  try {
    plugin_foreach(thd, visit_engine, MYSQL_STORAGE_ENGINE_PLUGIN, &walk);
  } catch (...) {
  }
}

unsigned char cs_hton_db_type(handlerton *hton) {
  return static_cast<unsigned char>(hton->db_type);
}

handlerton *cs_hton_by_legacy_type(THD *thd, unsigned char db_type) {
  try {
    return ha_resolve_by_legacy_type(thd, static_cast<legacy_db_type>(db_type));
  } catch (...) {
    return nullptr;
  }
}

int cs_clone_begin(handlerton *hton, THD *thd, const unsigned char **loc,
                   unsigned *loc_len, unsigned *task_id, int mode) {
  return guarded([&] {
    uint len = *loc_len;
    uint task = *task_id;
    int err = iface(hton).clone_begin(hton, thd, *loc, len, task,
                                      HA_CLONE_HYBRID,
                                      static_cast<Ha_clone_mode>(mode));
    *loc_len = len;
    *task_id = task;
    return err;
  });
}

int cs_clone_copy(handlerton *hton, THD *thd, const unsigned char *loc,
                  unsigned loc_len, unsigned task_id, Ha_clone_cbk *cbk) {
  return guarded([&] {
    return iface(hton).clone_copy(hton, thd, loc, loc_len, task_id, cbk);
  });
}

int cs_clone_ack(handlerton *hton, THD *thd, const unsigned char *loc,
                 unsigned loc_len, unsigned task_id, int in_err,
                 Ha_clone_cbk *cbk) {
  return guarded([&] {
    return iface(hton).clone_ack(hton, thd, loc, loc_len, task_id, in_err, cbk);
  });
}

int cs_clone_end(handlerton *hton, THD *thd, const unsigned char *loc,
                 unsigned loc_len, unsigned task_id, int in_err) {
  return guarded([&] {
    return iface(hton).clone_end(hton, thd, loc, loc_len, task_id, in_err);
  });
}

int cs_clone_apply_begin(handlerton *hton, THD *thd, const unsigned char **loc,
                         unsigned *loc_len, unsigned *task_id, int mode,
                         const char *data_dir) {
  return guarded([&] {
    uint len = *loc_len;
    uint task = *task_id;
    int err = iface(hton).clone_apply_begin(
        hton, thd, *loc, len, task, static_cast<Ha_clone_mode>(mode), data_dir);
    *loc_len = len;
    *task_id = task;
    return err;
  });
}

int cs_clone_apply(handlerton *hton, THD *thd, const unsigned char *loc,
                   unsigned loc_len, unsigned task_id, int in_err,
                   Ha_clone_cbk *cbk) {
  return guarded([&] {
    return iface(hton).clone_apply(hton, thd, loc, loc_len, task_id, in_err,
                                   cbk);
  });
}

int cs_clone_apply_end(handlerton *hton, THD *thd, const unsigned char *loc,
                       unsigned loc_len, unsigned task_id, int in_err) {
  return guarded([&] {
    return iface(hton).clone_apply_end(hton, thd, loc, loc_len, task_id,
                                       in_err);
  });
}

THD *cs_current_thd(void) { return thd_get_current_thd(); }

void cs_set_clone_protocol(void *service) {
  clone_protocol =
      reinterpret_cast<SERVICE_TYPE_NO_CONST(clone_protocol) *>(service);
}

THD *cs_worker_thd_start(unsigned thread_key, unsigned statement_key) {
  if (clone_protocol == nullptr) return nullptr;
  THD *thd = nullptr;
  try {
    clone_protocol->mysql_clone_start_statement(thd, thread_key,
                                                statement_key);
  } catch (...) {
    return nullptr;
  }
  return thd;
}

void cs_worker_thd_finish(THD *thd) {
  if (clone_protocol == nullptr || thd == nullptr) return;
  try {
    clone_protocol->mysql_clone_finish_statement(thd);
  } catch (...) {
  }
}

void cs_statement_refine(THD *thd, unsigned statement_key) {
  if (clone_protocol == nullptr || thd == nullptr) return;
  try {
    clone_protocol->mysql_clone_start_statement(thd, 0, statement_key);
  } catch (...) {
  }
}

unsigned cs_thd_error(THD *thd, const char **message) {
  uint32_t err = 0;
  *message = nullptr;
  if (clone_protocol == nullptr) return 0;
  try {
    clone_protocol->mysql_clone_get_error(thd, &err, message);
  } catch (...) {
    return 0;
  }
  return err;
}

void cs_set_log_services(void *builtins, void *builtins_string) {
  log_bi = reinterpret_cast<SERVICE_TYPE(log_builtins) *>(builtins);
  log_bs = reinterpret_cast<SERVICE_TYPE(log_builtins_string) *>(
      builtins_string);
}

void cs_log(int level, int errcode, const char *message) {
  if (log_bi == nullptr || log_bs == nullptr) return;
  try {
    LogPluginErr(static_cast<loglevel>(level), errcode, message);
  } catch (...) {
  }
}

}  // extern "C"
