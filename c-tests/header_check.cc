// Compiled, never run: both public headers are valid C++ under -Wpedantic -Werror.
#include "mlos/mlos_core.h"
#include "mlos/smi_spec.h"

int mlos_header_check_cxx() { return static_cast<int>(sizeof(smi_plugin_t) + sizeof(smi_tensor_t)); }
