/*
 * Certificate and key checks with OpenSSL. Never prints key material; the
 * key's permissions are checked before it is read.
 */
#include "tls.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

long tls_protocol_options(void)
{
	return (long)(SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_COMPRESSION);
}

enum tls_file_problem tls_check_files(const char *cert_path, const char *key_path, char *why, size_t whylen)
{
	enum tls_file_problem problem = TLS_FILES_OK;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	struct stat st;
	FILE *f;

	f = fopen(cert_path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read '%s': %s", cert_path, strerror(errno));
		return TLS_BAD_CERT;
	}
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!cert) {
		snprintf(why, whylen, "'%s' holds no PEM certificate", cert_path);
		return TLS_BAD_CERT;
	}

	if (stat(key_path, &st)) {
		snprintf(why, whylen, "cannot read '%s': %s", key_path, strerror(errno));
		problem = TLS_BAD_KEY;
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, whylen, "'%s' is readable by others than its owner (mode %04o); chmod 600 it", key_path,
			 (unsigned)(st.st_mode & 07777));
		problem = TLS_BAD_KEY;
		goto out;
	}
	f = fopen(key_path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read '%s': %s", key_path, strerror(errno));
		problem = TLS_BAD_KEY;
		goto out;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!key) {
		snprintf(why, whylen, "'%s' holds no PEM private key (or it is encrypted)", key_path);
		problem = TLS_BAD_KEY;
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(why, whylen, "'%s' does not match the certificate '%s'", key_path, cert_path);
		problem = TLS_BAD_KEY;
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return problem;
}
