#include "tensor_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char* const dtype_names[] = {"INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                          "INT32", "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES"};

smi_dtype_t ref_dtype(const char* name) {
    size_t i;
    for (i = 1; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(name, dtype_names[i]) == 0) return (smi_dtype_t)i;
    return SMI_DTYPE_INVALID;
}

const char* ref_dtype_name(smi_dtype_t dtype) {
    return (unsigned)dtype < sizeof dtype_names / sizeof dtype_names[0] ? dtype_names[dtype] : "INVALID";
}

size_t ref_element_size(smi_dtype_t d) {
    switch (d) {
    case SMI_DTYPE_BOOL: case SMI_DTYPE_UINT8: case SMI_DTYPE_INT8: return 1;
    case SMI_DTYPE_UINT16: case SMI_DTYPE_INT16: case SMI_DTYPE_FP16: case SMI_DTYPE_BF16: return 2;
    case SMI_DTYPE_UINT32: case SMI_DTYPE_INT32: case SMI_DTYPE_FP32: return 4;
    case SMI_DTYPE_UINT64: case SMI_DTYPE_INT64: case SMI_DTYPE_FP64: return 8;
    default: return 0;
    }
}

static void store(ref_tensor_t* t, int64_t i, const char* text) {
    unsigned char* p = (unsigned char*)t->data + i * ref_element_size(t->dtype);
    switch (t->dtype) {
    case SMI_DTYPE_FP32: { float v = strtof(text, NULL); memcpy(p, &v, 4); break; }
    case SMI_DTYPE_FP64: { double v = strtod(text, NULL); memcpy(p, &v, 8); break; }
    case SMI_DTYPE_BOOL: case SMI_DTYPE_UINT8: case SMI_DTYPE_INT8: *p = (unsigned char)strtoll(text, NULL, 10); break;
    case SMI_DTYPE_INT16: case SMI_DTYPE_UINT16: case SMI_DTYPE_FP16: case SMI_DTYPE_BF16: {
        int16_t v = (int16_t)strtoll(text, NULL, 10); /* FP16/BF16: the 16-bit pattern */
        memcpy(p, &v, 2);
        break;
    }
    case SMI_DTYPE_INT32: case SMI_DTYPE_UINT32: { int32_t v = (int32_t)strtoll(text, NULL, 10); memcpy(p, &v, 4); break; }
    case SMI_DTYPE_INT64: { int64_t v = strtoll(text, NULL, 10); memcpy(p, &v, 8); break; }
    case SMI_DTYPE_UINT64: { uint64_t v = strtoull(text, NULL, 10); memcpy(p, &v, 8); break; }
    default: break;
    }
}

static char* unhex(const char* hex) {
    size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2, i;
    char* s = (char*)malloc(n + 1);
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[n] = 0;
    return s;
}

static int parse_line(ref_tensor_t* t, char* line) {
    char* save = NULL;
    char* tok = strtok_r(line, " \n", &save);
    int64_t i;
    uint32_t d;
    if (!tok) return -1;
    snprintf(t->name, sizeof t->name, "%s", tok);
    t->dtype = ref_dtype(strtok_r(NULL, " \n", &save));
    t->ndim = (uint32_t)atoi(strtok_r(NULL, " \n", &save));
    t->count = 1;
    for (d = 0; d < t->ndim; d++) {
        t->shape[d] = atoll(strtok_r(NULL, " \n", &save));
        t->count *= t->shape[d];
    }
    if (t->dtype == SMI_DTYPE_BYTES) {
        size_t total = 0, off = 0;
        t->strings = (char**)calloc((size_t)t->count + 1, sizeof(char*));
        for (i = 0; i < t->count; i++) {
            t->strings[i] = unhex(strtok_r(NULL, " \n", &save));
            total += 4 + strlen(t->strings[i]);
        }
        t->data = malloc(total + 1);
        for (i = 0; i < t->count; i++) {
            uint32_t len = (uint32_t)strlen(t->strings[i]);
            memcpy((char*)t->data + off, &len, 4);
            memcpy((char*)t->data + off + 4, t->strings[i], len);
            off += 4 + len;
        }
        t->byte_size = total;
        return 0;
    }
    t->byte_size = (size_t)t->count * ref_element_size(t->dtype);
    t->data = malloc(t->byte_size + 1);
    for (i = 0; i < t->count; i++) {
        tok = strtok_r(NULL, " \n", &save);
        if (!tok) return -1;
        store(t, i, tok);
    }
    return 0;
}

int ref_load(ref_case_t* c, const char* path) {
    FILE* f = fopen(path, "r");
    char* line = NULL;
    size_t cap = 0;
    memset(c, 0, sizeof *c);
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        ref_tensor_t* t;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (strncmp(line, "in ", 3) == 0 && c->num_inputs < REF_MAX_TENSORS) t = &c->inputs[c->num_inputs++];
        else if (strncmp(line, "out ", 4) == 0 && c->num_outputs < REF_MAX_TENSORS) t = &c->outputs[c->num_outputs++];
        else continue;
        if (parse_line(t, line + (line[0] == 'i' ? 3 : 4)) != 0) {
            fprintf(stderr, "%s: malformed line for %s\n", path, t->name);
            free(line);
            fclose(f);
            return -1;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

static void free_tensor(ref_tensor_t* t) {
    int64_t i;
    if (t->strings)
        for (i = 0; i < t->count; i++) free(t->strings[i]);
    free(t->strings);
    free(t->data);
}

void ref_free(ref_case_t* c) {
    int i;
    for (i = 0; i < c->num_inputs; i++) free_tensor(&c->inputs[i]);
    for (i = 0; i < c->num_outputs; i++) free_tensor(&c->outputs[i]);
}

smi_tensor_t ref_as_input(const ref_tensor_t* t) {
    smi_tensor_t s;
    memset(&s, 0, sizeof s);
    s.name = t->name;
    s.dtype = t->dtype;
    s.ndim = t->ndim;
    memcpy(s.shape, t->shape, sizeof s.shape);
    s.data = t->data;
    s.byte_size = t->byte_size;
    return s;
}

static double half_to_double(uint16_t h) {
    int exponent = (h >> 10) & 0x1f;
    double mantissa = h & 0x3ff, value;
    if (exponent == 0) value = ldexp(mantissa, -24);
    else if (exponent == 31) value = mantissa ? NAN : INFINITY;
    else value = ldexp(mantissa + 1024, exponent - 25);
    return (h & 0x8000) ? -value : value;
}

static double element(smi_dtype_t d, const void* base, int64_t i) {
    const unsigned char* p = (const unsigned char*)base + i * ref_element_size(d);
    switch (d) {
    case SMI_DTYPE_FP16: { uint16_t v; memcpy(&v, p, 2); return half_to_double(v); }
    case SMI_DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); uint32_t bits = (uint32_t)v << 16; float f; memcpy(&f, &bits, 4); return f; }
    case SMI_DTYPE_FP32: { float v; memcpy(&v, p, 4); return v; }
    case SMI_DTYPE_FP64: { double v; memcpy(&v, p, 8); return v; }
    case SMI_DTYPE_BOOL: case SMI_DTYPE_UINT8: return *p;
    case SMI_DTYPE_INT8: return (signed char)*p;
    case SMI_DTYPE_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SMI_DTYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case SMI_DTYPE_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SMI_DTYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case SMI_DTYPE_INT64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case SMI_DTYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    default: return NAN;
    }
}

static int is_float(smi_dtype_t d) {
    return d == SMI_DTYPE_FP32 || d == SMI_DTYPE_FP64 || d == SMI_DTYPE_FP16 || d == SMI_DTYPE_BF16;
}

/* Integers as text, exactly (a double would round 64-bit extremes). */
static void integer_text(smi_dtype_t d, const void* base, int64_t i, char* out, size_t n) {
    const unsigned char* p = (const unsigned char*)base + i * ref_element_size(d);
    if (d == SMI_DTYPE_UINT64) {
        uint64_t v;
        memcpy(&v, p, 8);
        snprintf(out, n, "%llu", (unsigned long long)v);
    } else if (d == SMI_DTYPE_INT64) {
        int64_t v;
        memcpy(&v, p, 8);
        snprintf(out, n, "%lld", (long long)v);
    } else {
        snprintf(out, n, "%.0f", element(d, base, i));
    }
}

int ref_matches(const ref_tensor_t* e, const smi_tensor_t* got, double tolerance, char* why, size_t n) {
    uint32_t d;
    int64_t i;
    if (got->dtype != e->dtype) {
        snprintf(why, n, "%s: dtype %s, expected %s", e->name, ref_dtype_name(got->dtype), ref_dtype_name(e->dtype));
        return 0;
    }
    if (got->ndim != e->ndim) {
        snprintf(why, n, "%s: rank %u, expected %u", e->name, got->ndim, e->ndim);
        return 0;
    }
    for (d = 0; d < e->ndim; d++)
        if (got->shape[d] != e->shape[d]) {
            snprintf(why, n, "%s: dim %u is %lld, expected %lld", e->name, d, (long long)got->shape[d], (long long)e->shape[d]);
            return 0;
        }
    if (got->byte_size != e->byte_size || (e->byte_size && !got->data)) {
        snprintf(why, n, "%s: %zu bytes, expected %zu", e->name, got->byte_size, e->byte_size);
        return 0;
    }
    if (!is_float(e->dtype)) {
        if (memcmp(got->data, e->data, e->byte_size) != 0) {
            snprintf(why, n, "%s: %s values differ", e->name, ref_dtype_name(e->dtype));
            return 0;
        }
        return 1;
    }
    for (i = 0; i < e->count; i++) {
        double want = element(e->dtype, e->data, i), have = element(got->dtype, got->data, i);
        double diff = fabs(want - have);
        if (!(diff <= tolerance)) {
            snprintf(why, n, "%s[%lld]: %.9g, expected %.9g (diff %.3g)", e->name, (long long)i, have, want, diff);
            return 0;
        }
    }
    return 1;
}

/* A growing string. */
typedef struct {
    char* s;
    size_t len, cap;
} text_t;

static void append(text_t* t, const char* s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = (char*)realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

static void append_element(text_t* t, const ref_tensor_t* r, int64_t i) {
    char item[64];
    if (r->dtype == SMI_DTYPE_BYTES) {
        append(t, "\"");
        append(t, r->strings[i]); /* fixture strings hold no quotes or backslashes */
        append(t, "\"");
    } else if (r->dtype == SMI_DTYPE_BOOL) {
        append(t, element(r->dtype, r->data, i) != 0 ? "true" : "false");
    } else if (is_float(r->dtype)) {
        snprintf(item, sizeof item, "%.9g", element(r->dtype, r->data, i));
        append(t, item);
    } else {
        integer_text(r->dtype, r->data, i, item, sizeof item);
        append(t, item);
    }
}

/* Nested arrays following the shape, from element *next on. */
static void append_nested(text_t* t, const ref_tensor_t* r, uint32_t depth, int64_t* next) {
    int64_t i;
    if (depth == r->ndim) {
        append_element(t, r, (*next)++);
        return;
    }
    append(t, "[");
    for (i = 0; i < r->shape[depth]; i++) {
        if (i) append(t, ",");
        append_nested(t, r, depth + 1, next);
    }
    append(t, "]");
}

char* ref_inputs_json(const ref_case_t* c) {
    text_t t = {NULL, 0, 0};
    char item[128];
    int k;
    append(&t, "{");
    for (k = 0; k < c->num_inputs; k++) {
        int64_t next = 0;
        snprintf(item, sizeof item, "%s\"%s\":", k ? "," : "", c->inputs[k].name);
        append(&t, item);
        append_nested(&t, &c->inputs[k], 0, &next);
    }
    append(&t, "}");
    return t.s;
}

int ref_matches_json(const ref_tensor_t* e, const char* json, double tolerance, char* why, size_t n) {
    char key[96];
    const char* p;
    int64_t i;
    uint32_t d;
    snprintf(key, sizeof key, "\"name\":\"%s\"", e->name);
    p = strstr(json, key);
    if (!p) {
        snprintf(why, n, "%s: not in the JSON answer", e->name);
        return 0;
    }
    p = strstr(p, "\"shape\":[");
    if (!p) return snprintf(why, n, "%s: no shape", e->name), 0;
    p += 9;
    for (d = 0; d < e->ndim; d++) {
        char* end;
        long long v = strtoll(p, &end, 10);
        if (v != e->shape[d]) return snprintf(why, n, "%s: JSON dim %u is %lld", e->name, d, v), 0;
        p = end + 1;
    }
    p = strstr(p, "\"data\":[");
    if (!p) return snprintf(why, n, "%s: no data", e->name), 0;
    p += 8;
    for (i = 0; i < e->count; i++) {
        if (e->dtype == SMI_DTYPE_BYTES) {
            size_t len = strlen(e->strings[i]);
            if (*p != '"' || strncmp(p + 1, e->strings[i], len) != 0 || p[1 + len] != '"')
                return snprintf(why, n, "%s[%lld]: JSON string differs from \"%s\"", e->name, (long long)i, e->strings[i]), 0;
            p += len + 3;
        } else if (e->dtype == SMI_DTYPE_BOOL) {
            int want = element(e->dtype, e->data, i) != 0;
            int have = strncmp(p, "true", 4) == 0;
            if (want != have) return snprintf(why, n, "%s[%lld]: JSON bool differs", e->name, (long long)i), 0;
            p += have ? 5 : 6;
        } else if (is_float(e->dtype)) {
            char* end;
            double have = strtod(p, &end), want = element(e->dtype, e->data, i);
            if (end == p || !(fabs(have - want) <= tolerance))
                return snprintf(why, n, "%s[%lld]: JSON %.9g, expected %.9g", e->name, (long long)i, have, want), 0;
            p = end + 1;
        } else {
            char want[32];
            size_t len;
            integer_text(e->dtype, e->data, i, want, sizeof want);
            len = strlen(want);
            if (strncmp(p, want, len) != 0 || (p[len] != ',' && p[len] != ']'))
                return snprintf(why, n, "%s[%lld]: JSON integer differs from %s", e->name, (long long)i, want), 0;
            p += len + 1;
        }
    }
    return 1;
}
