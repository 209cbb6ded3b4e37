/* A strict JSON (RFC 8259) and UTF-8 validator for what the core writes out: the registry views
 * must stay valid JSON, and messages valid text, whatever ids, paths and plugin answers went in. */
#ifndef MLOS_JSON_CHECK_H
#define MLOS_JSON_CHECK_H

#include <stddef.h>

/** NULL when text[0..length) is one valid JSON value in valid UTF-8; else why not, with an offset. */
const char* json_problem(const char* text, size_t length, size_t* offset);

/** NULL when text[0..length) is valid UTF-8 (shortest forms, no surrogates); else why not, with an offset. */
const char* utf8_problem(const char* text, size_t length, size_t* offset);

#endif
