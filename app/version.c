/*
 * version: wsgate's own version and those of the libraries it is running with,
 * for bug reports and for checking what a package pulled in. Runtime calls
 * where the library has one; libconfig has none, so its line is the version of
 * the headers wsgate was built against, and says so.
 */
#include "version.h"

#include <ev.h>
#include <jansson.h>
#include <libconfig.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>

void version_print(FILE *out)
{
	fprintf(out, "wsgate %s\n", WSGATE_VERSION);
	fprintf(out, "libwebsockets %s\n", lws_get_library_version());
	fprintf(out, "%s\n", OpenSSL_version(OPENSSL_VERSION));
	fprintf(out, "jansson %s\n", jansson_version_str());
	fprintf(out, "libconfig %d.%d.%d (compile-time: libconfig has no run-time version call)\n", LIBCONFIG_VER_MAJOR,
		LIBCONFIG_VER_MINOR, LIBCONFIG_VER_REVISION);
	fprintf(out, "libev %d.%d\n", ev_version_major(), ev_version_minor());
}
