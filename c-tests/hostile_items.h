/* The items of core_hostile_test.c, one function each (the numbers are #12's contract items). */
#ifndef MLOS_HOSTILE_ITEMS_H
#define MLOS_HOSTILE_ITEMS_H

#include "hostile_support.h"

/* hostile_lifecycle.c: threads, timing, re-entrancy. */
void item_use_after_unregister(void);        /* 1 */
void item_use_after_unregister_serial(void); /* 1, serialised plugin */
void item_unload_starvation(void);           /* 4 */
void item_last_error_threads(void);          /* 6 */
void item_reentry_serial_sibling(void);      /* 7c */
void item_reentry_serial_unload(void);       /* 7c */
void item_reentry_thread_safe_sibling(void); /* 7c */
void item_reentry_thread_safe_unload(void);  /* 7c */
void item_no_registry_lock(void);            /* 7d */
void item_unload_timeout(void);              /* 10 */
void item_unload_timeout_serial(void);       /* 10, serialised plugin */

/* hostile_deadline.c: a model's timeout_ms as an SMI 1.2 deadline. */
void item_inference_deadline(void);          /* 10 */
void item_gate_deadline(void);               /* 10, serialised plugin */

/* hostile_contract.c: what a plugin or caller hands the core, and what comes back. */
void item_lying_num_outputs_batched(void);   /* 2 */
void item_lying_num_outputs(void);           /* 2 */
void item_lying_output_size(void);           /* 3 */
void item_lying_model_io(void);              /* 3 */
void item_bad_typed_outputs(void);           /* 3 */
void item_bytes_ids(void);                   /* 5 */
void item_bytes_plugin_path(void);           /* 5 */
void item_bytes_model_path(void);            /* 5 */
void item_status_out_of_range(void);         /* 7a */
void item_release_twice(void);               /* 7b */
void item_plugin_path_checks(void);          /* 7e */
void item_shape_overflow(void);              /* 8 */
void item_onnx_info_unloaded(void);          /* 9 */
void item_echo_direct(void);                 /* 9 */

#endif
