/*
 * version: what `wsgate --version` prints. The libraries' versions are the ones
 * wsgate runs with, asked of each library at run time where it can say.
 */
#ifndef WSGATE_VERSION_H
#define WSGATE_VERSION_H

#include <stdio.h>

/* Prints "wsgate X.Y.Z" and one "library version" line per library to out. */
void version_print(FILE *out);

#endif
