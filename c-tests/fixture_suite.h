/* Checks shared by the model plugins' host tests: every fixture through typed inference with
 * plugin-allocated outputs, compared with its reference, once and from many threads at once. */
#ifndef MLOS_FIXTURE_SUITE_H
#define MLOS_FIXTURE_SUITE_H

#include "tensor_ref.h"
#include "test_support.h"

typedef struct {
    mlos_api_t* api;
    mlos_core_t* core;
    const char* const* models; /* model ids, registered and loaded */
    ref_case_t* refs;          /* their references, same order */
    size_t count;
    double tolerance;
} fixture_suite_t;

/** One typed inference of model f; returns the number of mismatches (printed when report). */
int suite_typed_once(const fixture_suite_t* s, size_t f, int report);

/** Every model once, reporting mismatches as test failures. */
void suite_test_typed(const fixture_suite_t* s);

/**
 * Every model through untyped inference in the MLOS JSON convention, each output checked
 * against its reference; a too-small answer buffer must say how much it needs.
 */
void suite_test_json(const fixture_suite_t* s);

/**
 * Raw little-endian bytes of model f's single input, through untyped inference; the raw answer
 * must equal the first output's reference. model_id may differ from s->models[f] (same model
 * registered with declared specs).
 */
void suite_test_raw(const fixture_suite_t* s, size_t f, const char* model_id);

/** Every model `iterations` times from `threads` threads at once; any mismatch fails. */
void suite_test_threads(const fixture_suite_t* s, int threads, int iterations);

#endif
