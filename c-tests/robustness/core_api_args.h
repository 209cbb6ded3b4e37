/* The argument space of core_api_fuzz (core_api_args.c): reading the input, buffers that end at a
 * guard page, and the pickers that turn input bytes into C API arguments. */
#ifndef MLOS_CORE_API_ARGS_H
#define MLOS_CORE_API_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "mlos/mlos_core.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the input, read from the front; past its end every byte reads as 0 */
typedef struct {
    const uint8_t* p;
    size_t n;
} rd_t;

uint8_t u8(rd_t* r);
uint16_t u16(rd_t* r);
uint32_t u32(rd_t* r);
uint64_t u64(rd_t* r);
/** Up to want bytes of the input; returns how many. */
size_t take(rd_t* r, size_t want, const uint8_t** out);
/** n bytes: the first few from the input, the rest a pattern (big buffers must not eat the program). */
void fill(rd_t* r, uint8_t* dst, size_t n);

/* ---- guarded memory: a region's last byte sits just before a PROT_NONE page */
typedef struct {
    uint8_t* base;
    size_t cap;
} region_t;

region_t region_new(size_t cap);
/** The last n bytes of r: whatever reads or writes past them faults. */
void* region_end(const region_t* r, size_t n);
/** bytes[0..n) and a NUL, at the end of r. */
char* place(const region_t* r, const void* bytes, size_t n);
char* place_str(const region_t* r, const char* s);

#define MAX_TENSORS 6        /* input tensors described by the input; more are copies of them */
#define MAX_OUTPUTS 8        /* output slots whose kind the input chooses; more are plugin-allocated */
#define BIG_INPUTS 2048      /* the most tensors in an input or output array */
#define DATA_CAP (1u << 20)  /* one tensor's data, one untyped input or output */
#define OUTBUF_CAP (1u << 16) /* one caller output buffer */

extern region_t r_id, r_plugin, r_path, r_options, r_config, r_inputs, r_outputs, r_untyped_in, r_untyped_out,
    r_text, r_reqs, r_data[MAX_TENSORS], r_name[MAX_TENSORS], r_outbuf[MAX_OUTPUTS];

/* ---- what the pickers need from core_api_fuzz.c */
extern mlos_core_t* core;
extern mlos_core_t* stale_core;
extern char build_dir[2048], fixture_dir[2048], model_dir[2048], echo_so[4096], onnx_so[4096];
/** Set as the release of some inputs: a broken promise if the core ever calls it. */
void input_release_called(smi_tensor_t* t);

/* ---- pickers (selectors in core_api_fuzz.h) */
/** The strings picked for the current call (reset num_args per call): messages quote them. */
extern const char* args[8];
extern int num_args;

mlos_core_t* pick_bad_core(rd_t* r);
const char* pick_id_in(rd_t* r, const region_t* reg);
const char* pick_id(rd_t* r);
const char* pick_plugin(rd_t* r);
const char* pick_path(rd_t* r);
/** Register options (templated) or, templated == 0 with OPT_MUTATED, a mutated core config. */
const char* pick_json(rd_t* r, const region_t* reg, int templated);
/** Up to 4 overwrites, insertions or cuts of s (capacity cap). */
void mutate(rd_t* r, char* s, size_t cap);
/** "<model_dir>/<name>" into buf. */
const char* model_file(char* buf, size_t n, const char* name);

size_t dtype_size(int dtype);
/** Element count of the first min(ndim, 8) dims, or -1 when a dim is negative or the product overflows. */
int64_t element_count(const smi_tensor_t* t);
/** One input tensor into slot i (data in r_data[i], name in r_name[i]). */
void pick_tensor(rd_t* r, smi_tensor_t* t, int i);

#endif
