/* A plugin author's build against the installed SMI header alone (MlosNative::smi, mlos-smi.pc):
 * it must compile and export smi_plugin_init; the install test loads nothing from it. */
#include <stddef.h>

#include "mlos/smi_spec.h"

__attribute__((visibility("default"))) smi_plugin_t* smi_plugin_init(void) { return NULL; }
