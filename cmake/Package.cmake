# The Debian package, by CPack: `cpack -G DEB` in a build configured with
# CMAKE_INSTALL_PREFIX=/usr (scripts/package.sh does both) makes
# wsgate_<version>_<arch>.deb from the install rules of cmake/Install.cmake:
#   - Depends computed by dpkg-shlibdeps from the libraries the binary links
#     (libwebsockets, OpenSSL, jansson, libconfig, libev), plus the libev plugin
#     of libwebsockets, which lws loads with dlopen() so no tool can see it;
#   - the configuration a conffile;
#   - postinst creates the wsgate user and group and gives them the
#     configuration; postrm deletes the configuration directory on purge only.
#     Nothing is started, enabled or stopped by the package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wsgate)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WebSocket application server that tells clients why")
set(CPACK_PACKAGE_DESCRIPTION
    "wsgate admits authenticated WebSocket clients, keeps them alive through
proxies with per-session heartbeats, and keeps track of who is connected:
one session per user and device. Every refusal and close carries a code
from one table, with a reason and advice on whether to reconnect.
Includes a systemd unit (installed, not enabled) and an nginx example.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "wsgate developers <wsgate@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
# Absolute destinations (/etc/wsgate, /lib/systemd/system) go under the staging
# directory, never onto the building machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")

# The plugin lws dlopen()s for LWS_SERVER_OPTION_LIBEV: at least the version
# built against (it must match libwebsockets itself).
execute_process(COMMAND dpkg-query -W -f=\${Version} libwebsockets-evlib-ev
                OUTPUT_VARIABLE wsgate_evlib_version ERROR_QUIET RESULT_VARIABLE wsgate_evlib_rc)
if(wsgate_evlib_rc EQUAL 0 AND wsgate_evlib_version)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-ev (>= ${wsgate_evlib_version})")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-ev")
endif()

set(wsgate_control "${CMAKE_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${wsgate_control}")
configure_file("${CMAKE_SOURCE_DIR}/packaging/postinst.in" "${wsgate_control}/postinst" @ONLY)
configure_file("${CMAKE_SOURCE_DIR}/packaging/postrm.in" "${wsgate_control}/postrm" @ONLY)
file(WRITE "${wsgate_control}/conffiles" "${WSGATE_FULL_CONFDIR}/wsgate.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${wsgate_control}/conffiles;${wsgate_control}/postinst;${wsgate_control}/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
