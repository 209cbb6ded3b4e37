/* Reference tensors for model tests: the text files tests/models/make_*_fixtures.py write,
 * one tensor per line: <in|out> <name> <DATATYPE> <ndim> <dims...> <values...>
 * (BYTES values are hex of the UTF-8 text, "-" for empty). Parsed into smi_tensor_t-ready
 * buffers, with comparison helpers. */
#ifndef MLOS_TENSOR_REF_H
#define MLOS_TENSOR_REF_H

#include "mlos/smi_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define REF_MAX_TENSORS 16

typedef struct {
    char name[64];
    smi_dtype_t dtype;
    uint32_t ndim;
    int64_t shape[SMI_MAX_DIMS];
    int64_t count;     /* elements */
    void* data;        /* native layout; BYTES in the KServe layout */
    size_t byte_size;
    char** strings;    /* BYTES only: the elements as C strings */
} ref_tensor_t;

typedef struct {
    ref_tensor_t inputs[REF_MAX_TENSORS];
    ref_tensor_t outputs[REF_MAX_TENSORS];
    int num_inputs, num_outputs;
} ref_case_t;

/** Reads a .ref file; returns 0 on success, prints why and returns -1 otherwise. */
int ref_load(ref_case_t* c, const char* path);
void ref_free(ref_case_t* c);

/** An smi_tensor_t over the reference's data (borrowed). */
smi_tensor_t ref_as_input(const ref_tensor_t* t);

/** smi_dtype_t for a KServe name, SMI_DTYPE_INVALID if unknown. */
smi_dtype_t ref_dtype(const char* name);
const char* ref_dtype_name(smi_dtype_t dtype);
size_t ref_element_size(smi_dtype_t dtype);

/**
 * Compares an output with the expected tensor: dtype, shape and values (FP32/FP64 within
 * tolerance, the rest exactly). Writes a reason into why on mismatch; returns 1 if equal.
 */
int ref_matches(const ref_tensor_t* expected, const smi_tensor_t* got, double tolerance, char* why, size_t why_size);

/** The inputs as the MLOS JSON convention: {"name":[[nested by shape]],...}. Caller frees. */
char* ref_inputs_json(const ref_case_t* c);

/**
 * Checks one output inside a JSON answer {"outputs":[{"name":..,"datatype":..,"shape":[..],"data":[..]}]}.
 * Returns 1 if it is there with the expected shape and values.
 */
int ref_matches_json(const ref_tensor_t* expected, const char* json, double tolerance, char* why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif
