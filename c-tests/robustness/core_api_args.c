/* The argument space of core_api_fuzz: the input reader, buffers that end at a guard page, and
 * one picker per kind of argument (core handles, ids, plugin ids, paths, JSON, tensors), each
 * reading its selector and payload as core_api_fuzz.h describes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core_api_args.h"
#include "core_api_fuzz.h"

/* The strings the current call was given: error messages quote them, and they are left out of
 * the message's shape. */
const char* args[8];
int num_args;

static const char* arg(const char* s) {
    if (s && s[0] && num_args < 8) args[num_args++] = s;
    return s;
}

/* ---------------------------------------------------------------- guarded memory */

/* A region whose last byte sits just before a PROT_NONE page; data is placed at its end. */
region_t region_new(size_t cap) {
    region_t r;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t* m;
    cap = (cap + page - 1) / page * page;
    m = mmap(NULL, cap + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + cap, page, PROT_NONE) != 0) {
        perror("core_api_fuzz: mmap");
        exit(2);
    }
    r.base = m;
    r.cap = cap;
    return r;
}

void* region_end(const region_t* r, size_t n) {
    if (n > r->cap) abort(); /* a harness bug, not a finding */
    return r->base + r->cap - n;
}

/* bytes[0..n) and a NUL, ending at the guard page. */
char* place(const region_t* r, const void* bytes, size_t n) {
    char* s = region_end(r, n + 1);
    memmove(s, bytes, n);
    s[n] = 0;
    return s;
}

char* place_str(const region_t* r, const char* s) { return s ? place(r, s, strlen(s)) : NULL; }

region_t r_id, r_plugin, r_path, r_options, r_config, r_inputs, r_outputs, r_untyped_in, r_untyped_out,
    r_text, r_reqs, r_data[MAX_TENSORS], r_name[MAX_TENSORS], r_outbuf[MAX_OUTPUTS];

/* ---------------------------------------------------------------- input reader */

uint8_t u8(rd_t* r) {
    if (r->n == 0) return 0;
    r->n--;
    return *r->p++;
}
uint16_t u16(rd_t* r) { uint16_t lo = u8(r); return (uint16_t)(lo | (uint16_t)u8(r) << 8); }
uint32_t u32(rd_t* r) { uint32_t lo = u16(r); return lo | (uint32_t)u16(r) << 16; }
uint64_t u64(rd_t* r) { uint64_t lo = u32(r); return lo | (uint64_t)u32(r) << 32; }

/* Up to want bytes of the input. */
size_t take(rd_t* r, size_t want, const uint8_t** out) {
    size_t n = want < r->n ? want : r->n;
    *out = r->p;
    r->p += n;
    r->n -= n;
    return n;
}

/* n bytes: the first few from the input, the rest a pattern (big buffers must not eat the program). */
void fill(rd_t* r, uint8_t* dst, size_t n) {
    const uint8_t* src;
    size_t got = take(r, n < 16 ? n : 16, &src), i;
    memcpy(dst, src, got);
    for (i = got; i < n; i++) dst[i] = (uint8_t)(i * 131 + 7);
}

/* ---------------------------------------------------------------- argument pickers */

mlos_core_t* pick_bad_core(rd_t* r) {
    uint8_t sel = u8(r);
    uint64_t forged;
    if (sel % 3 == 0) return NULL;
    if (sel % 3 == 1) return stale_core;
    forged = u64(r);
    if (forged == 0 || forged == (uintptr_t)core) forged = 0xdead0;
    return (mlos_core_t*)(uintptr_t)forged;
}

static const char* const odd_ids[] = {
    "\xff", "\xfe\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "a\"b", "a\\b", "a\nb",
    "'", "\x01\x02", "echo ", " echo", "\357\273\277echo" /* BOM */, "\xe2\x80\x8b", "{}", "%s%n", "\xd0\x96",
};

/* Model id, placed at the end of r (sel % 16, see ID_* in core_api_fuzz.h). */
static const char* pick_id_raw(rd_t* r, const region_t* reg) {
    uint8_t sel = u8(r);
    const uint8_t* bytes;
    char buf[8];
    size_t n;
    switch (sel % 16) {
    case ID_ECHO: return place_str(reg, "echo");
    case ID_ECHO_BATCH: return place_str(reg, "echo-batch");
    case ID_MLP: return place_str(reg, "mlp");
    case ID_FZ0: case ID_FZ0 + 1: case ID_FZ0 + 2: case ID_FZ0 + 3:
        snprintf(buf, sizeof buf, "fz%d", sel % 16 - ID_FZ0);
        return place_str(reg, buf);
    case ID_NULL: return NULL;
    case ID_EMPTY: return place_str(reg, "");
    case ID_RAW:
        n = take(r, u8(r) % 48, &bytes);
        return place(reg, bytes, n);
    case ID_LONG: {
        size_t len = u16(r) % 1500;
        char* s = region_end(reg, len + 1);
        memset(s, 'a' + sel % 3, len);
        s[len] = 0;
        return s;
    }
    case ID_NEAR:
        snprintf(buf, sizeof buf, "echo%c", (char)(u8(r) | 1));
        return place_str(reg, buf);
    case ID_ODD: return place_str(reg, odd_ids[u8(r) % COUNT(odd_ids)]);
    case ID_PLUGIN_NAME: return place_str(reg, sel & 16 ? "csharp-echo" : "onnx-runtime");
    case ID_BLANK: return place_str(reg, sel & 16 ? " \t" : " ");
    default:
        snprintf(buf, sizeof buf, "fz%d", u8(r) % 10);
        return place_str(reg, buf);
    }
}
const char* pick_id_in(rd_t* r, const region_t* reg) { return arg(pick_id_raw(r, reg)); }
const char* pick_id(rd_t* r) { return pick_id_in(r, &r_id); }

static const char* pick_plugin_raw(rd_t* r) {
    uint8_t sel = u8(r);
    const uint8_t* bytes;
    size_t n;
    switch (sel % 8) {
    case PL_ECHO: case PL_ECHO + 1: case PL_ECHO + 2: return place_str(&r_plugin, "csharp-echo");
    case PL_ONNX: case PL_ONNX + 1: return place_str(&r_plugin, "onnx-runtime");
    case PL_NULL: return NULL;
    case PL_EMPTY: return place_str(&r_plugin, "");
    default:
        n = take(r, u8(r) % 24, &bytes);
        return place(&r_plugin, bytes, n);
    }
}

const char* model_file(char* buf, size_t n, const char* name) {
    snprintf(buf, n, "%s/%s", model_dir, name);
    return buf;
}

static const char* pick_path_raw(rd_t* r) {
    uint8_t sel = u8(r);
    char buf[8192];
    const uint8_t* bytes;
    size_t n;
    switch (sel % 10) {
    case PATH_NULL: return NULL;
    case PATH_MLP: return place_str(&r_path, model_file(buf, sizeof buf, "mlp.onnx"));
    case PATH_MULTI_IO: return place_str(&r_path, model_file(buf, sizeof buf, "multi_io.onnx"));
    case PATH_STRINGS: return place_str(&r_path, model_file(buf, sizeof buf, "strings.onnx"));
    case PATH_DTYPES: return place_str(&r_path, model_file(buf, sizeof buf, "dtypes.onnx"));
    case PATH_NOT_ONNX: return place_str(&r_path, model_file(buf, sizeof buf, "mlp.ref"));
    case PATH_MISSING: return place_str(&r_path, "/nonexistent/model.onnx");
    case PATH_DIR: return place_str(&r_path, model_dir);
    case PATH_RAW:
        if (sel & 0x80) { /* longer than PATH_MAX */
            memset(buf, 'p', 5000);
            buf[0] = '/';
            buf[5000] = 0;
            return place_str(&r_path, buf);
        }
        /* Fuzzed bytes under a folder that does not exist: never a real file (a device, say). */
        n = take(r, u8(r) % 64, &bytes);
        snprintf(buf, sizeof buf, "/nonexistent/mlos-fuzz/%.*s", (int)n, (const char*)bytes);
        return place_str(&r_path, buf);
    default: return place_str(&r_path, "");
    }
}

/* JSON values for the templates. None makes a call sleep: delays stay <= 2 ms, and values that
 * would be valid but long (delay_us 10^7, intra_op_threads 10^6) are left out. */
static const char* const str_values[] = {
    "\"echo\"", "\"onnx\"", "\"\"", "\"\\u00e9\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\\\"b\"", "null", "1",
    "[]", "{}", "\"\\u0000\"", "\"\xff\"", "\"1.0\"",
};
static const char* const delay_values[] = {"0", "100", "2000", "-1", "2147483648", "1.5", "\"10\"", "null", "true", "1e3", "-0"};
static const char* const config_values[] = {
    "{}", "[]", "\"label\"", "123", "null", "{\"device\":\"cpu\"}", "{\"device\":\"tpu\"}", "{\"device\":\"cuda:0\"}",
    "{\"device\":\"cuda:99999999999\"}", "{\"device\":\"cuda:-1\"}", "{\"intra_op_threads\":1}",
    "{\"intra_op_threads\":-1}", "{\"inter_op_threads\":\"2\"}", "{\"graph_optimization_level\":\"basic\"}",
    "{\"graph_optimization_level\":7}", "{\"allow_cpu_fallback\":1}", "{\"gpu_mem_limit\":-5}",
    "{\"cpu_mem_arena\":true}", "{\"device\":\"cuda:0\",\"allow_cpu_fallback\":true}", "{\"delay_us\":0}", "\"\"",
};
static const char* const batch_values[] = {"1", "4", "32", "4096", "4097", "0", "-1", "2.5", "\"8\"", "null", "99999999999", "{}"};
static const char* const queue_values[] = {"0", "100", "500", "10000001", "-1", "1e2", "\"x\"", "null"};
static const char* const odd_options[] = {
    "[]", "\"str\"", "{\"unknown\":1}", "{\"framework\":\"echo\",\"framework\":\"onnx\"}", "{\"dynamic_batching\":null}",
    "{\"dynamic_batching\":{}}", "{\"dynamic_batching\":[]}", "{\"dynamic_batching\":{\"max_batch_size\":4,\"x\":1}}",
    "{\"framework\":1}", "{\"config\":\"label\"}", "{\"config\":{}}", "   ", "{", "}", "{\"config\":", "null", "0",
    "{\"version\":{\"a\":[1,2]}}", "\xef\xbb\xbf{}", "{\"framework\":\"echo\"}\x01", "{\"\":1}", "/*c*/{}",
};

static void deep_nesting(char* out, size_t cap, int depth) {
    size_t n = (size_t)snprintf(out, cap, "{\"config\":");
    int i;
    for (i = 0; i < depth && n + 2 < cap; i++) out[n++] = '[';
    for (i = 0; i < depth && n + 2 < cap; i++) out[n++] = ']';
    if (n + 2 < cap) out[n++] = '}';
    out[n] = 0;
}

static void render_template(rd_t* r, char* out, size_t cap) {
    uint8_t t = u8(r);
#define PICK(list) list[u8(r) % COUNT(list)]
    switch (t % TPL_COUNT) {
    case TPL_FRAMEWORK:
        if (t & 0x80) {
            char longv[400];
            memset(longv, 'f', 300);
            longv[300] = 0;
            snprintf(out, cap, "{\"framework\":\"%s\",\"version\":%s}", longv, PICK(str_values));
        } else {
            const char* fw = PICK(str_values);
            snprintf(out, cap, "{\"framework\":%s,\"version\":%s}", fw, PICK(str_values));
        }
        break;
    case TPL_DELAY: snprintf(out, cap, "{\"config\":{\"delay_us\":%s}}", PICK(delay_values)); break;
    case TPL_CONFIG: snprintf(out, cap, "{\"config\":%s}", PICK(config_values)); break;
    case TPL_BATCHING: {
        const char* b = PICK(batch_values);
        const char* q = PICK(queue_values);
        switch ((t >> 3) % 4) {
        case 0: snprintf(out, cap, "{\"dynamic_batching\":{\"max_batch_size\":%s,\"max_queue_delay_us\":%s}}", b, q); break;
        case 1: snprintf(out, cap, "{\"dynamic_batching\":{\"max_batch_size\":%s}}", b); break;
        case 2: snprintf(out, cap, "{\"dynamic_batching\":{\"max_queue_delay_us\":%s}}", q); break;
        default: snprintf(out, cap, "{\"dynamic_batching\":{\"max_batch_size\":%s,\"max_batch_size\":%s}}", b, b); break;
        }
        break;
    }
    case TPL_ODD:
        if (t & 0x80) deep_nesting(out, cap, 20 + u8(r) % 200);
        else snprintf(out, cap, "%s", PICK(odd_options));
        break;
    default: {
        const char* fw = PICK(str_values);
        const char* cfg = PICK(config_values);
        const char* b = PICK(batch_values);
        snprintf(out, cap, "{\"framework\":%s,\"version\":\"1\",\"config\":%s,\"dynamic_batching\":{\"max_batch_size\":%s}}",
                 fw, cfg, b);
    }
    }
#undef PICK
}

/* Keys whose valid values can make one call take seconds (delay_us, max_queue_delay_us, *_threads)
 * are renamed in bytes the fuzzer wrote, so a mutation never turns a fast input into a hang; the
 * templates give those keys bounded values. */
static void defuse(char* s) {
    static const char* const keys[] = {"delay", "threads"};
    size_t k;
    for (k = 0; k < COUNT(keys); k++) {
        char* p = s;
        while ((p = strstr(p, keys[k])) != NULL) *p++ = 'X';
    }
}

void mutate(rd_t* r, char* s, size_t cap) {
    int k, count = u8(r) % 4 + 1;
    for (k = 0; k < count; k++) {
        size_t len = strlen(s), pos = len ? u16(r) % len : 0;
        uint8_t how = u8(r), ch = u8(r);
        if (how % 3 == 0 && len) s[pos] = (char)(ch ? ch : ' ');
        else if (how % 3 == 1 && len + 2 < cap) {
            memmove(s + pos + 1, s + pos, len - pos + 1);
            s[pos] = (char)(ch ? ch : '"');
        } else s[pos] = 0;
    }
}

/* Register options (sel % 8, see OPT_*), placed at the end of reg. */
static const char* pick_json_raw(rd_t* r, const region_t* reg, int templated) {
    char text[8192];
    uint8_t sel = u8(r);
    const uint8_t* bytes;
    size_t n;
    switch (sel % 8) {
    case OPT_NULL: return NULL;
    case OPT_EMPTY: return place_str(reg, "");
    case OPT_MUTATED:
        if (templated) render_template(r, text, sizeof text);
        else snprintf(text, sizeof text, "{\"plugins\":[{\"path\":\"%s\",\"id\":\"x\",\"config\":{}}]}", echo_so);
        mutate(r, text, sizeof text);
        defuse(text);
        return place_str(reg, text);
    case OPT_RAW:
        n = take(r, u8(r), &bytes);
        memcpy(text, bytes, n);
        text[n] = 0;
        defuse(text);
        return place_str(reg, text);
    case OPT_TEMPLATE_JUNK:
        render_template(r, text, sizeof text - 16);
        n = take(r, u8(r) % 8, &bytes);
        strncat(text, (const char*)bytes, n);
        return place_str(reg, text);
    default: render_template(r, text, sizeof text); return place_str(reg, text);
    }
}

const char* pick_plugin(rd_t* r) { return arg(pick_plugin_raw(r)); }
const char* pick_path(rd_t* r) { return arg(pick_path_raw(r)); }
const char* pick_json(rd_t* r, const region_t* reg, int templated) { return arg(pick_json_raw(r, reg, templated)); }

/* ---------------------------------------------------------------- tensors */

size_t dtype_size(int dtype) {
    static const size_t sizes[] = {0, 1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2};
    return dtype >= 0 && dtype < (int)COUNT(sizes) ? sizes[dtype] : 0;
}

/* Element count of the first min(ndim, 8) dims, or -1 when a dim is negative or the product
 * overflows 64 bits (a zero dim makes any shape empty, as the core counts). */
int64_t element_count(const smi_tensor_t* t) {
    uint32_t i, nd = t->ndim < SMI_MAX_DIMS ? t->ndim : SMI_MAX_DIMS;
    int64_t count = 1;
    int zero = 0;
    for (i = 0; i < nd; i++) {
        if (t->shape[i] < 0) return -1;
        zero |= t->shape[i] == 0;
    }
    if (zero) return 0;
    for (i = 0; i < nd; i++) {
        if (count > INT64_MAX / t->shape[i]) return -1;
        count *= t->shape[i];
    }
    return count;
}

static const char* const input_names[] = {"input", "input_0", "input_ids", "features", "text", "x", NULL, "", NULL, "in_fp32"};
static const int64_t huge_dims[] = {INT64_MAX, INT64_MIN, (int64_t)1 << 32, (int64_t)1 << 62, 3037000500LL, 4294967295LL, -2};

/* One input tensor into slot i (grammar in core_api_fuzz.h). */
void pick_tensor(rd_t* r, smi_tensor_t* t, int i) {
    uint8_t sel = u8(r), mode, extras;
    uint32_t d, nd;
    int64_t count;
    size_t esize, size;
    uint8_t* data;
    memset(t, 0, sizeof *t);
    if (sel % 10 == NAME_RAW) {
        const uint8_t* bytes;
        size_t n = take(r, u8(r) % 32, &bytes);
        t->name = place(&r_name[i], bytes, n);
    } else t->name = place_str(&r_name[i], input_names[sel % 10]);
    t->dtype = (smi_dtype_t)(u8(r) % 21);
    t->ndim = u8(r) % 10;
    nd = t->ndim < SMI_MAX_DIMS ? t->ndim : SMI_MAX_DIMS;
    for (d = 0; d < nd; d++) {
        uint8_t ds = u8(r);
        switch (ds % 8) {
        case DIM_SMALL: t->shape[d] = u8(r) % 5; break;
        case DIM_16: t->shape[d] = 16; break;
        case DIM_FREE: t->shape[d] = -1; break;
        case DIM_ZERO: t->shape[d] = 0; break;
        case DIM_HUGE: t->shape[d] = huge_dims[u8(r) % COUNT(huge_dims)]; break;
        case DIM_RANDOM: t->shape[d] = (int64_t)u64(r); break;
        case DIM_ONE: t->shape[d] = 1; break;
        default: t->shape[d] = 8; break;
        }
    }
    mode = u8(r) % 8;
    count = element_count(t);
    esize = dtype_size(t->dtype);
    if (mode < DATA_RANDOM_SIZE && t->dtype == SMI_DTYPE_BYTES && count >= 0 && count <= 65536) {
        /* A valid BYTES layout: per element a little-endian uint32 length, then the bytes. */
        size_t off = 0, e;
        uint8_t lengths[16];
        data = r_data[i].base;
        for (e = 0; e < 16; e++) lengths[e] = u8(r) % 9;
        for (e = 0; e < (size_t)count && off + 4 + 8 <= DATA_CAP; e++) {
            uint32_t len = lengths[e % 16];
            memcpy(data + off, &len, 4); /* little-endian host */
            memset(data + off + 4, 'a' + (int)(e % 26), len);
            off += 4 + len;
        }
        t->data = memmove(region_end(&r_data[i], off), data, off);
        t->byte_size = off;
    } else if ((mode < DATA_RANDOM_SIZE || mode == DATA_NEAR) && count >= 0 && esize && (uint64_t)count <= DATA_CAP / esize) {
        size = (size_t)count * esize;
        if (mode == DATA_NEAR) {
            int delta = (int)(int8_t)u8(r) % 9;
            size = delta < 0 && (size_t)-delta > size ? 0 : size + (size_t)delta;
            if (size > DATA_CAP) size = DATA_CAP;
        }
        t->data = region_end(&r_data[i], size);
        t->byte_size = size;
        fill(r, t->data, size);
    } else if (mode == DATA_NONE) {
        t->data = NULL;
        t->byte_size = 0;
    } else if (mode == DATA_NULL_WITH_SIZE) {
        t->data = NULL; /* the core checks this one: "has bytes but no data pointer" */
        t->byte_size = (size_t)u16(r) + 1;
    } else {
        size = u16(r);
        t->data = region_end(&r_data[i], size);
        t->byte_size = size;
        fill(r, t->data, size);
    }
    extras = u8(r);
    if (extras % 16 == 15) {
        uint8_t m = u8(r);
        t->memory_type = (smi_memory_type_t)(m == SMI_MEMORY_GPU ? 3 : m); /* never claims host memory is on a GPU */
        t->device_id = (int32_t)(int8_t)u8(r);
    } else if (extras % 16 == 14) t->memory_type = SMI_MEMORY_CPU_PINNED;
    else if (extras % 16 == 13) {
        t->release = input_release_called;
        t->release_context = (void*)(uintptr_t)0x5eed;
    }
}
