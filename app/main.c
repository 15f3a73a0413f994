/*
 * wsgate: command line, configuration check, and the server's run. Exits 0 on
 * a clean stop, 1 on a configuration or start-up error, 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: wsgate [-t] -c FILE\n"
		     "\n"
		     "WebSocket application server: admits, refuses and closes sessions with clear reasons.\n"
		     "\n"
		     "  -c, --config FILE   configuration file (libconfig syntax, see conf/wsgate.conf)\n"
		     "  -t, --test          check the configuration and exit\n"
		     "  -l, --log-level L   debug, info (default), warn or error\n"
		     "  -h, --help          show this help\n"
		     "  -v, --version       show the version\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },    { "test", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },	       { NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	bool test_only = false;
	enum log_level level = LOG_INFO;
	struct wsg_config *config;
	struct wsg_server server;
	char err[1024];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:tl:hv", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'l':
			if (log_parse_level(optarg, &level)) {
				fprintf(stderr, "wsgate: unknown log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			version_print(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_set_level(level);
	if (config_load(config_path, &config, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		if (test_only)
			fprintf(stderr, "configuration %s test failed\n", config_path);
		return 1;
	}
	if (test_only) {
		printf("configuration %s is ok\n", config_path);
		config_free(config);
		return 0;
	}
	rc = server_init(&server, config) || server_run(&server) ? 1 : 0;
	server_free(&server);
	config_free(server.config); /* a reload may have replaced the one loaded here */
	return rc;
}
