/* ABI layout test: every SMI struct's field offsets and sizes as the C compiler lays them out
 * from smi_spec.h must equal the C# mirror's (Mlos.Smi.Abi), which libmlos_core.so reports
 * through mlos_core_smi_layout(). A field added to one side only, or moved, fails here. */
#include <stddef.h>

#include "test_support.h"

#define FIELD(type, field) {#type "." #field, offsetof(type, field)}
#define SIZE(type) {#type, sizeof(type)}

static const struct {
    const char* name;
    size_t value;
} expected[] = {
    FIELD(smi_model_metadata_t, name), FIELD(smi_model_metadata_t, framework),
    FIELD(smi_model_metadata_t, version), FIELD(smi_model_metadata_t, path),
    FIELD(smi_model_metadata_t, config), SIZE(smi_model_metadata_t),

    FIELD(smi_resource_req_t, type), FIELD(smi_resource_req_t, device_id),
    FIELD(smi_resource_req_t, amount), SIZE(smi_resource_req_t),

    FIELD(smi_plugin_interface_t, initialize), FIELD(smi_plugin_interface_t, cleanup),
    FIELD(smi_plugin_interface_t, register_model), FIELD(smi_plugin_interface_t, unregister_model),
    FIELD(smi_plugin_interface_t, load_model), FIELD(smi_plugin_interface_t, unload_model),
    FIELD(smi_plugin_interface_t, inference), FIELD(smi_plugin_interface_t, batch_inference),
    FIELD(smi_plugin_interface_t, allocate_resources), FIELD(smi_plugin_interface_t, deallocate_resources),
    FIELD(smi_plugin_interface_t, get_model_info), FIELD(smi_plugin_interface_t, get_plugin_name),
    FIELD(smi_plugin_interface_t, get_plugin_version), FIELD(smi_plugin_interface_t, get_supported_frameworks),
    FIELD(smi_plugin_interface_t, get_smi_version), SIZE(smi_plugin_interface_t),

    FIELD(smi_tensor_spec_t, name), FIELD(smi_tensor_spec_t, dtype), FIELD(smi_tensor_spec_t, ndim),
    FIELD(smi_tensor_spec_t, shape), SIZE(smi_tensor_spec_t),

    FIELD(smi_tensor_t, name), FIELD(smi_tensor_t, dtype), FIELD(smi_tensor_t, ndim),
    FIELD(smi_tensor_t, shape), FIELD(smi_tensor_t, data), FIELD(smi_tensor_t, byte_size),
    FIELD(smi_tensor_t, memory_type), FIELD(smi_tensor_t, device_id), FIELD(smi_tensor_t, release),
    FIELD(smi_tensor_t, release_context), SIZE(smi_tensor_t),

    FIELD(smi_plugin_interface_1_1_t, capabilities), FIELD(smi_plugin_interface_1_1_t, get_model_io),
    FIELD(smi_plugin_interface_1_1_t, infer), FIELD(smi_plugin_interface_1_1_t, get_last_error),
    SIZE(smi_plugin_interface_1_1_t),

    FIELD(smi_plugin_t, interface), FIELD(smi_plugin_t, plugin_id), FIELD(smi_plugin_t, smi_version),
    FIELD(smi_plugin_interface_1_2_t, infer_with_deadline), SIZE(smi_plugin_interface_1_2_t),
    FIELD(smi_plugin_interface_1_3_t, infer_selected), SIZE(smi_plugin_interface_1_3_t),
    FIELD(smi_plugin_t, private_data), FIELD(smi_plugin_t, v1_1), FIELD(smi_plugin_t, v1_2), FIELD(smi_plugin_t, v1_3), SIZE(smi_plugin_t),
};

int main(int argc, char** argv) {
    mlos_api_t api;
    /* text[0] is a newline so that every line, the first included, is found as "\n<line>\n". */
    char text[16384] = "\n";
    size_t size = sizeof text - 1;
    size_t i, lines = 0;
    const char* p;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <build-dir>\n", argv[0]);
        return 2;
    }
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.smi_layout(text + 1, &size));

    for (p = text + 1; *p; p++) lines += *p == '\n';
    CHECK(lines == sizeof expected / sizeof expected[0],
          "the C# mirror describes %zu entries, the header %zu", lines, sizeof expected / sizeof expected[0]);

    for (i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "\n%s %zu\n", expected[i].name, expected[i].value);
        CHECK(strstr(text, line) != NULL, "C# mirror disagrees: header says \"%s %zu\"", expected[i].name,
              expected[i].value);
    }
    CHECK(SMI_VERSION == api.smi_version(), "header SMI_VERSION 0x%x, library 0x%x", SMI_VERSION, api.smi_version());

    if (mlos_test_failures) {
        fprintf(stderr, "C# mirror says:\n%s", text);
        return 1;
    }
    printf("ABI layout: %zu offsets and sizes match\n", sizeof expected / sizeof expected[0]);
    return 0;
}
