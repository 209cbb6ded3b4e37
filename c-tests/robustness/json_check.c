#include "json_check.h"

#include <string.h>

typedef struct {
    const unsigned char* p;
    const unsigned char* end;
    const char* why;
} json_t;

#define MAX_DEPTH 256

static int fail(json_t* j, const char* why) {
    if (!j->why) j->why = why;
    return 0;
}

static void skip_space(json_t* j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* One UTF-8 sequence: shortest form, no surrogates, at most U+10FFFF. */
static int utf8_char(json_t* j) {
    unsigned c = *j->p, n, cp, i;
    if (c < 0x80) { j->p++; return 1; }
    if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07;
    else return fail(j, "invalid UTF-8 lead byte");
    if (j->end - j->p <= (long)n) return fail(j, "truncated UTF-8 sequence");
    for (i = 1; i <= n; i++) {
        if ((j->p[i] & 0xc0) != 0x80) return fail(j, "invalid UTF-8 continuation byte");
        cp = (cp << 6) | (j->p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) return fail(j, "overlong UTF-8");
    if (cp >= 0xd800 && cp <= 0xdfff) return fail(j, "UTF-8 encoded surrogate");
    j->p += n + 1;
    return 1;
}

static int hex4(json_t* j, unsigned* v) {
    int i;
    *v = 0;
    if (j->end - j->p < 4) return fail(j, "truncated \\u escape");
    for (i = 0; i < 4; i++) {
        unsigned char c = j->p[i];
        unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
        if (d == 99) return fail(j, "bad hex digit in \\u escape");
        *v = *v * 16 + d;
    }
    j->p += 4;
    return 1;
}

static int string(json_t* j) {
    j->p++; /* the opening quote */
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') { j->p++; return 1; }
        if (c < 0x20) return fail(j, "control character in a string");
        if (c == '\\') {
            unsigned v, low;
            if (++j->p >= j->end) break;
            c = *j->p++;
            if (c == 'u') {
                if (!hex4(j, &v)) return 0;
                if (v >= 0xdc00 && v <= 0xdfff) return fail(j, "lone low surrogate escape");
                if (v >= 0xd800 && v <= 0xdbff) {
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') return fail(j, "lone high surrogate escape");
                    j->p += 2;
                    if (!hex4(j, &low)) return 0;
                    if (low < 0xdc00 || low > 0xdfff) return fail(j, "high surrogate escape without a low one");
                }
            } else if (!strchr("\"\\/bfnrt", c) || c == 0) return fail(j, "bad escape");
            continue;
        }
        if (!utf8_char(j)) return 0;
    }
    return fail(j, "unterminated string");
}

static int digits(json_t* j) {
    const unsigned char* start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > start;
}

static int number(json_t* j) {
    if (*j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (!digits(j)) return fail(j, "bad number");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) return fail(j, "bad fraction");
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!digits(j)) return fail(j, "bad exponent");
    }
    return 1;
}

static int literal(json_t* j, const char* word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return fail(j, "unexpected character");
    j->p += n;
    return 1;
}

static int value(json_t* j, int depth) {
    if (depth > MAX_DEPTH) return fail(j, "nested too deep");
    skip_space(j);
    if (j->p >= j->end) return fail(j, "value expected");
    switch (*j->p) {
    case '"': return string(j);
    case 't': return literal(j, "true");
    case 'f': return literal(j, "false");
    case 'n': return literal(j, "null");
    case '[':
    case '{': {
        int object = *j->p == '{';
        char close = object ? '}' : ']';
        j->p++;
        skip_space(j);
        if (j->p < j->end && *j->p == close) { j->p++; return 1; }
        for (;;) {
            if (object) {
                skip_space(j);
                if (j->p >= j->end || *j->p != '"') return fail(j, "member name expected");
                if (!string(j)) return 0;
                skip_space(j);
                if (j->p >= j->end || *j->p != ':') return fail(j, "':' expected");
                j->p++;
            }
            if (!value(j, depth + 1)) return 0;
            skip_space(j);
            if (j->p < j->end && *j->p == ',') { j->p++; continue; }
            if (j->p < j->end && *j->p == close) { j->p++; return 1; }
            return fail(j, object ? "',' or '}' expected" : "',' or ']' expected");
        }
    }
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return number(j);
        return fail(j, "unexpected character");
    }
}

const char* json_problem(const char* text, size_t length, size_t* offset) {
    json_t j;
    j.p = (const unsigned char*)text;
    j.end = j.p + length;
    j.why = NULL;
    if (value(&j, 0)) {
        skip_space(&j);
        if (j.p != j.end) fail(&j, "text after the value");
    }
    if (offset) *offset = (size_t)(j.p - (const unsigned char*)text);
    return j.why;
}

const char* utf8_problem(const char* text, size_t length, size_t* offset) {
    json_t j;
    j.p = (const unsigned char*)text;
    j.end = j.p + length;
    j.why = NULL;
    while (j.p < j.end && utf8_char(&j)) {
    }
    if (offset) *offset = (size_t)(j.p - (const unsigned char*)text);
    return j.why;
}
