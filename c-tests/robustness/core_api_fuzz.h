/* The input language of core_api_fuzz: each fuzz input is a small program over the C API's
 * argument space. Shared by the decoder (core_api_fuzz.c) and the seed writer
 * (core_api_seeds.c), so a seed is written with the same numbers the decoder reads.
 *
 *   program := op*                       at most MAX_OPS ops; missing bytes read as 0
 *   op      := opbyte args               opcode = opbyte & 15; opbyte >> 4 == 15 means the call
 *                                        gets a bad core (one more byte: NULL, destroyed, forged)
 *
 * Every argument starts with one selector byte (the "sel" below) and may take payload bytes.
 * The selectors are documented where the decoder reads them (pick_* in core_api_fuzz.c). */
#ifndef MLOS_CORE_API_FUZZ_H
#define MLOS_CORE_API_FUZZ_H

#define MAX_OPS 48

enum {
    OP_REGISTER = 0,     /* id plugin path options */
    OP_LOAD = 1,         /* id */
    OP_UNLOAD = 2,       /* id */
    OP_UNREGISTER = 3,   /* id */
    OP_INFERENCE = 4,    /* id untyped_input out_cap */
    OP_INFER = 5,        /* id inputs outputs */
    OP_MODEL_INFO = 6,   /* id text_buffer */
    OP_LIST_MODELS = 7,  /* text_buffer */
    OP_LIST_PLUGINS = 8, /* text_buffer */
    OP_ALLOCATE = 9,     /* id requests */
    OP_DEALLOCATE = 10,  /* id */
    OP_RELEASE = 11,     /* sel count: release_outputs edge cases */
    OP_LOAD_PLUGIN = 12, /* plugin_path plugin_id plugin_config */
    OP_CREATE = 13,      /* core_config: a second core, created and destroyed */
    OP_LAYOUT = 14,      /* text_buffer */
    OP_INFER2 = 15,      /* same as OP_INFER: typed infer is the widest surface, so it gets two codes */
    BAD_CORE = 0xf0      /* or'ed into an opbyte */
};

/* id selector (sel % 16). */
enum {
    ID_ECHO = 0, ID_ECHO_BATCH = 1, ID_MLP = 2, ID_FZ0 = 3, /* 3..6: fz0..fz3 */
    ID_NULL = 7, ID_EMPTY = 8, ID_RAW = 9, ID_LONG = 10, ID_NEAR = 11, ID_ODD = 12,
    ID_PLUGIN_NAME = 13, ID_BLANK = 14, ID_FZ_DIGIT = 15
};

/* plugin id selector (sel % 8). */
enum { PL_ECHO = 0, PL_ONNX = 3, PL_NULL = 5, PL_EMPTY = 6, PL_RAW = 7 };

/* model path selector (sel % 10; PATH_RAW with bit 7: a path longer than PATH_MAX). */
enum {
    PATH_NULL = 0, PATH_MLP = 1, PATH_MULTI_IO = 2, PATH_STRINGS = 3, PATH_DTYPES = 4,
    PATH_NOT_ONNX = 5, PATH_MISSING = 6, PATH_DIR = 7, PATH_RAW = 8, PATH_EMPTY = 9
};

/* register options selector (sel % 8); templates take a template byte and value bytes. */
enum {
    OPT_NULL = 0, OPT_EMPTY = 1, OPT_TEMPLATE = 2, /* 2..4 */
    OPT_MUTATED = 5, OPT_RAW = 6, OPT_TEMPLATE_JUNK = 7
};
enum {
    TPL_FRAMEWORK = 0, TPL_DELAY = 1, TPL_CONFIG = 2, TPL_BATCHING = 3, TPL_ODD = 4, TPL_FULL = 5,
    TPL_COUNT = 6
};

/* text buffer selector (sel % 8); bit 3 of sel: on BUFFER_TOO_SMALL retry with the size asked for. */
enum {
    TXT_NULL_ZERO = 0, TXT_NULL_CAP = 1, TXT_NO_SIZE = 2, TXT_1 = 3, TXT_8 = 4, TXT_256 = 5,
    TXT_64K = 6, TXT_U16 = 7, TXT_RETRY = 8
};

/* untyped input selector (sel % 8). */
enum {
    IN_NULL_ZERO = 0, IN_NULL_SIZE = 1, IN_RAW = 2, /* 2..4 */
    IN_JSON = 5, IN_FP32 = 6, IN_ZEROS = 7
};

/* untyped output capacity selector (sel % 8). */
enum {
    OUT_NULL_ZERO = 0, OUT_NULL_CAP = 1, OUT_ZERO = 2, OUT_1 = 3, OUT_64 = 4, OUT_4K = 5,
    OUT_1M = 6, OUT_U16 = 7
};

/* typed inputs: count byte c. c < 0xe8: c % 6 tensors; 0xe8..0xef: NULL array, count c & 7;
 * 0xf0..: a big count (BIG_COUNTS[c & 3]) of real tensors, cycling the first ones described. */
#define INPUTS_NULL 0xe8
#define INPUTS_BIG 0xf0

/* tensor: name dtype ndim dim* datamode [payload] extras */
enum {
    NAME_INPUT = 0, NAME_INPUT_0 = 1, NAME_INPUT_IDS = 2, NAME_FEATURES = 3, NAME_TEXT = 4,
    NAME_X = 5, NAME_NULL = 6, NAME_EMPTY = 7, NAME_RAW = 8, NAME_IN_FP32 = 9
};
enum { DIM_SMALL = 0, DIM_16 = 1, DIM_FREE = 2, DIM_ZERO = 3, DIM_HUGE = 4, DIM_RANDOM = 5, DIM_ONE = 6, DIM_8 = 7 };
enum {
    DATA_CONSISTENT = 0, /* 0..3: byte_size = what shape and dtype need (BYTES: a valid layout) */
    DATA_RANDOM_SIZE = 4, DATA_NEAR = 5, DATA_NONE = 6, DATA_NULL_WITH_SIZE = 7
};
/* extras byte x: x % 16 == 15: odd memory_type; 14: pinned; 13: a release on an input (must never be called) */

/* typed outputs: c < 0xe8: capacity c % 6, release style (c / 6) & 1; 0xe8..0xef: a big capacity
 * (the inputs' BIG_COUNTS[c & 3]); 0xf0..: NULL array, capacity c & 3. Each of the first 8 slots:
 * sel % 4: 0, 1 plugin-allocated (data NULL); 2 caller buffer of OUT_SIZES[(sel >> 2) % 8];
 * 3 caller buffer of u16 bytes. Slots past 8 are plugin-allocated. */
#define OUTPUTS_BIG 0xe8
#define OUTPUTS_NULL 0xf0

/* resource requests: c < 0xf0: c % 4 requests; 0xf0..: NULL array, count c & 3. Each: type device amount. */
#define REQS_NULL 0xf0

/* release_outputs edge cases (sel % 3): (NULL, n), (zeroed tensors, n), (tensors, 0). */

/* plugin path selector (sel % 10). */
enum {
    PP_ECHO = 0, PP_ONNX = 1, PP_BAD_MAJOR = 2, PP_BAD_NULL = 3, PP_BAD_INIT = 4, PP_NO_ENTRY = 5,
    PP_MISSING = 6, PP_NOT_ELF = 7, PP_DIR = 8, PP_NULL = 9
};

/* core config selector (sel % 8). */
enum {
    CC_NULL = 0, CC_EMPTY = 1, CC_OBJECT = 2, CC_NO_PLUGINS = 3, CC_OWNED = 4, CC_GUIDE = 5,
    CC_RAW = 6, CC_MUTATED = 7
};

#endif
