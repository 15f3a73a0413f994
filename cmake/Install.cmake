# Install rules: `cmake --install build [--prefix DIR]` puts wsgate where a
# system service lives (GNUInstallDirs):
#   bin/wsgate
#   etc/wsgate/wsgate.conf              the reference configuration, never overwritten
#   lib/systemd/system/wsgate.service   (WSGATE_SYSTEMD_UNITDIR)
#   share/doc/wsgate/README.md, share/doc/wsgate/nginx/wsgate.conf and wsgate-upstream.conf
#   share/wsgate/www/                   when www/ exists
#   share/man/man8/wsgate.8.gz, share/man/man5/wsgate.conf.5.gz
# With CMAKE_INSTALL_PREFIX=/usr the configuration goes to /etc (GNUInstallDirs'
# rule for the full path); scripts/package.sh builds the Debian package that way.
# The man pages are built here too: wsgate.8 from docs/man/wsgate.8.in,
# wsgate.conf.5 from conf/wsgate.conf by docs/man/conf2man.awk.
include(GNUInstallDirs)

set(WSGATE_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit is installed (relative to CMAKE_INSTALL_PREFIX, or absolute)")

set(wsgate_confdir "${CMAKE_INSTALL_FULL_SYSCONFDIR}/wsgate")
if(WSGATE_SYSTEMD_UNITDIR MATCHES "^/")
  set(WSGATE_FULL_UNITDIR "${WSGATE_SYSTEMD_UNITDIR}")
else()
  set(WSGATE_FULL_UNITDIR "${CMAKE_INSTALL_PREFIX}/${WSGATE_SYSTEMD_UNITDIR}")
endif()
set(WSGATE_FULL_CONFDIR "${wsgate_confdir}")
set(WSGATE_FULL_DOCDIR "${CMAKE_INSTALL_FULL_DOCDIR}")
set(WSGATE_FULL_WWWDIR "${CMAKE_INSTALL_FULL_DATADIR}/wsgate/www")
set(wsgate_gen "${CMAKE_BINARY_DIR}/install")
file(MAKE_DIRECTORY "${wsgate_gen}")

# --- the installed configuration ---------------------------------------------
# cmake/install-conf.awk rewrites conf/wsgate.conf's relative paths for the
# installed location and comments out listen_tls (no certificate is shipped).
find_program(WSGATE_AWK NAMES awk mawk gawk REQUIRED)
add_custom_command(
  OUTPUT "${wsgate_gen}/wsgate.conf"
  COMMAND "${WSGATE_AWK}" -v "confdir=${WSGATE_FULL_CONFDIR}" -v "wwwdir=${WSGATE_FULL_WWWDIR}"
          -v "docdir=${WSGATE_FULL_DOCDIR}" -f "${CMAKE_CURRENT_LIST_DIR}/install-conf.awk"
          "${CMAKE_SOURCE_DIR}/conf/wsgate.conf" > "${wsgate_gen}/wsgate.conf.tmp"
  COMMAND "${CMAKE_COMMAND}" -E rename "${wsgate_gen}/wsgate.conf.tmp" "${wsgate_gen}/wsgate.conf"
  DEPENDS "${CMAKE_CURRENT_LIST_DIR}/install-conf.awk" "${CMAKE_SOURCE_DIR}/conf/wsgate.conf"
  COMMENT "Generating the installed wsgate.conf"
  VERBATIM)
add_custom_target(wsgate_installed_conf ALL DEPENDS "${wsgate_gen}/wsgate.conf")

# Never overwrite an existing configuration (an upgrade from source keeps the
# administrator's file); the package marks it a conffile instead. Mode 640: it
# holds tokens and API keys (postinst gives it to the group wsgate).
if(CMAKE_INSTALL_FULL_SYSCONFDIR STREQUAL "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}")
  # Evaluated at install time, so that `cmake --install --prefix DIR` is obeyed.
  set(wsgate_confdir_at_install "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}/wsgate")
else()
  # An absolute CMAKE_INSTALL_SYSCONFDIR, or GNUInstallDirs' rule for the
  # prefixes /usr and /opt/...: /etc and /etc/opt/...
  set(wsgate_confdir_at_install "${WSGATE_FULL_CONFDIR}")
endif()
install(CODE "
set(wsgate_confdir \"${wsgate_confdir_at_install}\")
if(EXISTS \"\$ENV{DESTDIR}\${wsgate_confdir}/wsgate.conf\")
  message(STATUS \"Keeping existing: \$ENV{DESTDIR}\${wsgate_confdir}/wsgate.conf\")
else()
  file(INSTALL DESTINATION \"\${wsgate_confdir}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
       FILES \"${wsgate_gen}/wsgate.conf\")
endif()
")

# --- the systemd unit: conf/systemd/wsgate.service names the package's paths --
file(READ "${CMAKE_SOURCE_DIR}/conf/systemd/wsgate.service" wsgate_unit)
string(REPLACE "/usr/bin/wsgate" "${CMAKE_INSTALL_FULL_BINDIR}/wsgate" wsgate_unit "${wsgate_unit}")
string(REPLACE "/etc/wsgate" "${WSGATE_FULL_CONFDIR}" wsgate_unit "${wsgate_unit}")
string(REPLACE "/usr/share/doc/wsgate" "${WSGATE_FULL_DOCDIR}" wsgate_unit "${wsgate_unit}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/conf/systemd/wsgate.service")
if(EXISTS "${wsgate_gen}/wsgate.service")
  file(READ "${wsgate_gen}/wsgate.service" wsgate_unit_old)
endif()
if(NOT wsgate_unit STREQUAL "${wsgate_unit_old}")
  file(WRITE "${wsgate_gen}/wsgate.service" "${wsgate_unit}")
endif()

# --- man pages ------------------------------------------------------------------
# The date honours SOURCE_DATE_EPOCH, for reproducible packages.
string(TIMESTAMP WSGATE_MAN_DATE "%Y-%m-%d" UTC)
configure_file("${CMAKE_SOURCE_DIR}/docs/man/wsgate.8.in" "${wsgate_gen}/wsgate.8" @ONLY)
find_program(WSGATE_GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT "${wsgate_gen}/wsgate.conf.5"
  COMMAND "${WSGATE_AWK}" -v "version=${PROJECT_VERSION}" -v "date=${WSGATE_MAN_DATE}"
          -v "sysconfdir=${CMAKE_INSTALL_FULL_SYSCONFDIR}" -f "${CMAKE_SOURCE_DIR}/docs/man/conf2man.awk"
          "${CMAKE_SOURCE_DIR}/docs/man/wsgate.conf.5.in" "${CMAKE_SOURCE_DIR}/conf/wsgate.conf"
          > "${wsgate_gen}/wsgate.conf.5.tmp"
  COMMAND "${CMAKE_COMMAND}" -E rename "${wsgate_gen}/wsgate.conf.5.tmp" "${wsgate_gen}/wsgate.conf.5"
  DEPENDS "${CMAKE_SOURCE_DIR}/docs/man/conf2man.awk" "${CMAKE_SOURCE_DIR}/docs/man/wsgate.conf.5.in"
          "${CMAKE_SOURCE_DIR}/conf/wsgate.conf"
  COMMENT "Generating wsgate.conf(5) from conf/wsgate.conf"
  VERBATIM)
foreach(page wsgate.8 wsgate.conf.5)
  add_custom_command(
    OUTPUT "${wsgate_gen}/${page}.gz"
    COMMAND "${WSGATE_GZIP}" -9 -n -c "${wsgate_gen}/${page}" > "${wsgate_gen}/${page}.gz"
    DEPENDS "${wsgate_gen}/${page}"
    VERBATIM)
endforeach()
add_custom_target(wsgate_man ALL DEPENDS "${wsgate_gen}/wsgate.8.gz" "${wsgate_gen}/wsgate.conf.5.gz")

# --- install rules -------------------------------------------------------------
install(TARGETS wsgate RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${wsgate_gen}/wsgate.service" DESTINATION "${WSGATE_SYSTEMD_UNITDIR}")
install(FILES "${CMAKE_SOURCE_DIR}/README.md" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(FILES "${CMAKE_SOURCE_DIR}/conf/nginx/wsgate.conf" "${CMAKE_SOURCE_DIR}/conf/nginx/wsgate-upstream.conf"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}/nginx")
install(FILES "${wsgate_gen}/wsgate.8.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
install(FILES "${wsgate_gen}/wsgate.conf.5.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man5")
if(EXISTS "${CMAKE_SOURCE_DIR}/www")
  install(DIRECTORY "${CMAKE_SOURCE_DIR}/www/" DESTINATION "${CMAKE_INSTALL_DATADIR}/wsgate/www")
endif()

# --- tests that need no root: the man pages, cmake --install into DESTDIR ------------------------------------
add_test(NAME package.manpages
         COMMAND /usr/bin/python3 "${CMAKE_SOURCE_DIR}/test/package/test_manpages.py"
                 "${CMAKE_SOURCE_DIR}/conf/wsgate.conf" "${wsgate_gen}/wsgate.conf.5" "${wsgate_gen}/wsgate.8")
set_tests_properties(package.manpages PROPERTIES TIMEOUT 60)
add_test(NAME package.install
         COMMAND "${CMAKE_SOURCE_DIR}/test/package/test_install.sh" "${CMAKE_BINARY_DIR}" "${CMAKE_INSTALL_FULL_BINDIR}"
                 "${WSGATE_FULL_CONFDIR}" "${WSGATE_FULL_UNITDIR}" "${WSGATE_FULL_DOCDIR}" "${CMAKE_INSTALL_FULL_MANDIR}"
                 "${WSGATE_FULL_WWWDIR}")
set_tests_properties(package.install PROPERTIES TIMEOUT 120)
