/*
 * TLS policy for the wss listener (Mozilla "intermediate": TLS 1.2 and 1.3
 * only, AEAD ciphers with forward secrecy) and the start-up checks of the
 * certificate and key files, so a bad file is a config error, not a crash.
 */
#ifndef WSGATE_TLS_H
#define WSGATE_TLS_H

#include <stddef.h>

#define WSG_TLS12_CIPHERS                                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                     \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                       \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define WSG_TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* SSL_OP_* bits that switch off everything older than TLS 1.2. */
long tls_protocol_options(void);

enum tls_file_problem { TLS_FILES_OK, TLS_BAD_CERT, TLS_BAD_KEY };

/*
 * Checks that cert holds a PEM certificate, key a PEM private key readable
 * by its owner only, and that they belong together. On a problem, why says
 * what, naming the file; the return value says which key is at fault.
 */
enum tls_file_problem tls_check_files(const char *cert, const char *key, char *why, size_t whylen);

#endif
