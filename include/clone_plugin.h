/* The one header bindgen reads (as C++20, see build.rs). It pulls in the
 * server's public plugin ABI and the component services the plugin uses,
 * plus our C++ shim's C interface. Nothing of MySQL is copied here: every
 * type comes from the MySQL source tree the build points at. */
#ifndef CLONE_RS_CLONE_PLUGIN_H
#define CLONE_RS_CLONE_PLUGIN_H

#include <mysql/plugin.h>
#include <mysql/plugin_clone.h>
#include <mysql/service_plugin_registry.h>
#include <mysql/components/services/registry.h>
#include <mysql/components/services/backup_lock_service.h>
#include <mysql/components/services/pfs_plugin_table_service.h>
#include <mysql/components/services/mysql_string.h>
#include <mysql/components/services/mysql_system_variable.h>
#include <my_sys.h>
#include <typelib.h>
#include <mysql_version.h>

#include "../shim/clone_shim.h"

#endif
