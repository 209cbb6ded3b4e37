/* Compiled, never run: both public headers are valid C99 under -Wpedantic -Werror. */
#include "mlos/mlos_core.h"
#include "mlos/smi_spec.h"

int mlos_header_check_c(void) { return (int)sizeof(smi_plugin_t) + (int)sizeof(smi_tensor_t); }
