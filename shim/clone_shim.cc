// The C++ half of the server boundary. See clone_shim.h for the contract.
// Kept deliberately thin: no clone logic lives here, only ABI translation.

#define LOG_COMPONENT_TAG "Clone"
#define LOG_SUBSYSTEM_TAG "Clone"

#include "clone_shim.h"
#include "error_codes.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "mysql/my_loglevel.h"
#include "mysql/components/services/clone_protocol_service.h"
#include "mysql/components/services/log_builtins.h"
#include "mysql/plugin.h"
#include "mysql/service_security_context.h"
#include "mysql/psi/psi_memory.h"
#include "mysql/psi/psi_statement.h"
#include "mysql/psi/psi_thread.h"
#include "mysql_com_server.h"
#include "mysql/components/services/bits/mysql_socket_bits.h"
#include "sql/handler.h"
#include "sql/sql_error.h"
#include "sql/sql_restart_server.h"
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
    return mysql_errors::ER_OUTOFMEMORY;
  } catch (...) {
    return mysql_errors::ER_INTERNAL_ERROR;
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

bool cs_hton_is_innodb(handlerton *hton) {
  return hton->db_type == DB_TYPE_INNODB;
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

namespace {
PSI_thread_key psi_keys_thread[2];
PSI_statement_info psi_statements[] = {
    {0, "local", 0, PSI_DOCUMENT_ME},
    {0, "client", 0, PSI_DOCUMENT_ME},
    {0, "server", 0, PSI_DOCUMENT_ME}};
PSI_thread_info psi_threads[] = {
    {&psi_keys_thread[0], "local-task", "clone_local", 0, 0, PSI_DOCUMENT_ME},
    {&psi_keys_thread[1], "client-task", "clone_client", 0, 0,
     PSI_DOCUMENT_ME}};
// Transfer buffers are mapped by the plugin, not allocated through the
// server, and may be freed by another thread: global statistics only.
PSI_memory_key psi_memory_data;
PSI_memory_info psi_memory[] = {{&psi_memory_data, "data",
                                 PSI_FLAG_ONLY_GLOBAL_STAT, 0,
                                 PSI_DOCUMENT_ME}};
}  // namespace

void cs_psi_register(void) {
  try {
    if (psi_thread_service != nullptr)
      psi_thread_service->register_thread("clone", psi_threads, 2);
    if (psi_statement_service != nullptr)
      psi_statement_service->register_statement("clone", psi_statements, 3);
    if (psi_memory_service != nullptr)
      psi_memory_service->register_memory("clone", psi_memory, 1);
  } catch (...) {
  }
}

void cs_psi_memory_account(long long bytes) {
  if (psi_memory_service == nullptr || psi_memory_data == 0 || bytes == 0)
    return;
  PSI_thread *owner = nullptr;
  if (bytes > 0)
    psi_memory_service->memory_alloc(psi_memory_data,
                                     static_cast<size_t>(bytes), &owner);
  else
    psi_memory_service->memory_free(psi_memory_data,
                                    static_cast<size_t>(-bytes), owner);
}

unsigned cs_psi_key(int instrument) {
  switch (instrument) {
    case CS_PSI_LOCAL_TASK:
      return psi_keys_thread[0];
    case CS_PSI_CLIENT_TASK:
      return psi_keys_thread[1];
    case CS_PSI_STATEMENT_LOCAL:
      return psi_statements[0].m_key;
    case CS_PSI_STATEMENT_CLIENT:
      return psi_statements[1].m_key;
    case CS_PSI_STATEMENT_SERVER:
      return psi_statements[2].m_key;
    default:
      return 0;
  }
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

void cs_push_note(THD *thd, unsigned code, const char *text) {
  try {
    push_warning(thd, Sql_condition::SL_NOTE, code, text);
  } catch (...) {
  }
}

bool cs_server_is_supervised(void) { return is_mysqld_managed(); }

size_t cs_thd_account(THD *thd, char *buf, size_t len) {
  try {
    MYSQL_SECURITY_CONTEXT ctx = nullptr;
    if (thd_get_security_context(thd, &ctx) || ctx == nullptr) return 0;
    MYSQL_LEX_CSTRING user{nullptr, 0};
    MYSQL_LEX_CSTRING host{nullptr, 0};
    if (security_context_get_option(ctx, "priv_user", &user) ||
        security_context_get_option(ctx, "priv_host", &host))
      return 0;
    std::string account(user.str == nullptr ? "" : user.str, user.length);
    account += '@';
    account.append(host.str == nullptr ? "" : host.str, host.length);
    account.copy(buf, std::min(len, account.size()));
    return account.size();
  } catch (...) {
    return 0;
  }
}

int cs_get_command(THD *thd, unsigned char *command, unsigned char **buf,
                   size_t *len) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_get_command(thd, command, buf, len);
  });
}

int cs_send_response(THD *thd, bool secure, unsigned char *packet,
                     size_t len) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_send_response(thd, secure, packet, len);
  });
}

int cs_send_error(THD *thd, unsigned char err_cmd, bool fatal) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_send_error(thd, err_cmd, fatal);
  });
}

// The compression extension must live as long as the connection.
struct cs_conn {
  MYSQL *mysql = nullptr;
  NET_SERVER ext;
  int fd = -1;
};

cs_conn *cs_connect(THD *thd, const char *host, unsigned port,
                    const char *user, const char *password, int ssl_mode,
                    const char *ssl_key, const char *ssl_cert,
                    const char *ssl_ca, bool compress) {
  if (clone_protocol == nullptr) return nullptr;
  cs_conn *conn = nullptr;
  try {
    conn = new cs_conn();
    net_server_ext_init(&conn->ext);
    mysql_clone_ssl_context ctx;
    ctx.m_ssl_mode = ssl_mode;
    ctx.m_ssl_key = ssl_key;
    ctx.m_ssl_cert = ssl_cert;
    ctx.m_ssl_ca = ssl_ca;
    ctx.m_enable_compression = compress;
    ctx.m_server_extn = compress ? &conn->ext : nullptr;
    MYSQL_SOCKET socket;
    conn->mysql = clone_protocol->mysql_clone_connect(thd, host, port, user,
                                                      password, &ctx, &socket);
    if (conn->mysql != nullptr) conn->fd = socket.fd;
  } catch (...) {
  }
  if (conn != nullptr && conn->mysql == nullptr) {
    delete conn;
    conn = nullptr;
  }
  return conn;
}

int cs_send_command(THD *thd, cs_conn *conn, bool set_active,
                    unsigned char command, unsigned char *buf, size_t len) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_send_command(thd, conn->mysql,
                                                    set_active, command, buf,
                                                    len);
  });
}

int cs_get_response(THD *thd, cs_conn *conn, bool set_active,
                    unsigned timeout_s, unsigned char **packet, size_t *len,
                    size_t *net_len) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_get_response(
        thd, conn->mysql, set_active, timeout_s, packet, len, net_len);
  });
}

int cs_kill(cs_conn *conn, cs_conn *victim) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_kill(conn->mysql, victim->mysql);
  });
}

int cs_socket(const cs_conn *conn) { return conn->fd; }

void cs_disconnect(THD *thd, cs_conn *conn, bool fatal, bool clear_error) {
  if (conn == nullptr) return;
  try {
    if (clone_protocol != nullptr)
      clone_protocol->mysql_clone_disconnect(thd, conn->mysql, fatal,
                                             clear_error);
  } catch (...) {
  }
  delete conn;
}

int cs_get_charsets(THD *thd, cs_string_visitor visit, void *ctx) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    std::vector<std::string> names;
    int err = clone_protocol->mysql_clone_get_charsets(thd, names);
    if (err == 0)
      for (const auto &n : names) visit(ctx, n.data(), n.size());
    return err;
  });
}

int cs_get_configs(THD *thd, const char *const *keys, size_t n,
                   cs_string_visitor visit, void *ctx) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    std::vector<std::pair<std::string, std::string>> configs;
    for (size_t i = 0; i < n; i++) configs.emplace_back(keys[i], "");
    int err = clone_protocol->mysql_clone_get_configs(thd, configs);
    if (err == 0)
      for (const auto &kv : configs)
        visit(ctx, kv.second.data(), kv.second.size());
    return err;
  });
}

int cs_validate_charsets(THD *thd, const char *const *names,
                         const size_t *lens, size_t n) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    std::vector<std::string> list;
    for (size_t i = 0; i < n; i++) list.emplace_back(names[i], lens[i]);
    return clone_protocol->mysql_clone_validate_charsets(thd, list);
  });
}

int cs_validate_configs(THD *thd, const char *const *keys,
                        const size_t *key_lens, const char *const *values,
                        const size_t *value_lens, size_t n) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    std::vector<std::pair<std::string, std::string>> configs;
    for (size_t i = 0; i < n; i++)
      configs.emplace_back(std::string(keys[i], key_lens[i]),
                           std::string(values[i], value_lens[i]));
    return clone_protocol->mysql_clone_validate_configs(thd, configs);
  });
}

int cs_validate_version(const char *recipient, size_t recipient_len,
                        const char *donor, size_t donor_len,
                        bool recipient_lts, bool donor_lts) {
  if (clone_protocol == nullptr) return mysql_errors::ER_INTERNAL_ERROR;
  return guarded([&] {
    return clone_protocol->mysql_clone_validate_version(
        std::string(recipient, recipient_len), std::string(donor, donor_len),
        recipient_lts, donor_lts);
  });
}

namespace {
struct Plugin_walk {
  cs_plugin_visitor visit;
  void *ctx;
};

bool visit_plugin(THD *, plugin_ref plugin, void *arg) {
  auto *walk = static_cast<Plugin_walk *>(arg);
  const LEX_CSTRING *name = plugin_name(plugin);
  const st_plugin_dl *dl = plugin_dlib(plugin);
  const char *so = dl != nullptr ? dl->dl.str : "";
  size_t so_len = dl != nullptr ? dl->dl.length : 0;
  walk->visit(walk->ctx, name->str, name->length, so, so_len);
  return false;
}
}  // namespace

int cs_foreach_plugin(THD *thd, cs_plugin_visitor visit, void *ctx) {
  Plugin_walk walk{visit, ctx};
  return guarded([&] {
    return plugin_foreach(thd, visit_plugin, MYSQL_ANY_PLUGIN, &walk) ? mysql_errors::ER_INTERNAL_ERROR
                                                                       : 0;
  });
}

bool cs_plugin_installed(THD *thd, const char *name, size_t len) {
  try {
    const LEX_CSTRING lex{name, len};
    plugin_ref plugin = my_plugin_lock_by_name(thd, lex, MYSQL_ANY_PLUGIN);
    if (plugin == nullptr) return false;
    plugin_unlock(thd, plugin);
    return true;
  } catch (...) {
    return false;
  }
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
