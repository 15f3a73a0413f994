/*
 * The close-code table as JSON, for clients: GET /close-codes (public, the
 * browser client's reconnect policy) and GET /api/close-codes answer this.
 * Built from closecode_table(), so there is one table.
 */
#ifndef WSGATE_CLOSECODE_JSON_H
#define WSGATE_CLOSECODE_JSON_H

#include <jansson.h>

/* {"close_codes":[{"code","reason","advice","meaning"}...],"ranges":[{"codes","advice"}...]}; NULL: no memory */
json_t *closecode_json(void);

#endif
