namespace Mlos.Smi.Abi;

/// <summary>
/// Offsets and sizes of every mirrored struct, as the C# compiler lays them out. The ABI layout
/// test compares this list with <c>offsetof</c>/<c>sizeof</c> from smi_spec.h.
/// </summary>
public static unsafe class SmiLayout
{
    /// <summary>One line per entry: <c>struct.field offset</c> or <c>struct sizeof</c>.</summary>
    public static string Describe()
    {
        var lines = new List<string>();
        void Field(string name, void* field, void* start) => lines.Add($"{name} {(byte*)field - (byte*)start}");

        SmiModelMetadata m;
        Field("smi_model_metadata_t.name", &m.Name, &m);
        Field("smi_model_metadata_t.framework", &m.Framework, &m);
        Field("smi_model_metadata_t.version", &m.Version, &m);
        Field("smi_model_metadata_t.path", &m.Path, &m);
        Field("smi_model_metadata_t.config", &m.Config, &m);
        lines.Add($"smi_model_metadata_t {sizeof(SmiModelMetadata)}");

        SmiResourceReq r;
        Field("smi_resource_req_t.type", &r.Type, &r);
        Field("smi_resource_req_t.device_id", &r.DeviceId, &r);
        Field("smi_resource_req_t.amount", &r.Amount, &r);
        lines.Add($"smi_resource_req_t {sizeof(SmiResourceReq)}");

        SmiPluginInterface i;
        Field("smi_plugin_interface_t.initialize", &i.Initialize, &i);
        Field("smi_plugin_interface_t.cleanup", &i.Cleanup, &i);
        Field("smi_plugin_interface_t.register_model", &i.RegisterModel, &i);
        Field("smi_plugin_interface_t.unregister_model", &i.UnregisterModel, &i);
        Field("smi_plugin_interface_t.load_model", &i.LoadModel, &i);
        Field("smi_plugin_interface_t.unload_model", &i.UnloadModel, &i);
        Field("smi_plugin_interface_t.inference", &i.Inference, &i);
        Field("smi_plugin_interface_t.batch_inference", &i.BatchInference, &i);
        Field("smi_plugin_interface_t.allocate_resources", &i.AllocateResources, &i);
        Field("smi_plugin_interface_t.deallocate_resources", &i.DeallocateResources, &i);
        Field("smi_plugin_interface_t.get_model_info", &i.GetModelInfo, &i);
        Field("smi_plugin_interface_t.get_plugin_name", &i.GetPluginName, &i);
        Field("smi_plugin_interface_t.get_plugin_version", &i.GetPluginVersion, &i);
        Field("smi_plugin_interface_t.get_supported_frameworks", &i.GetSupportedFrameworks, &i);
        Field("smi_plugin_interface_t.get_smi_version", &i.GetSmiVersion, &i);
        lines.Add($"smi_plugin_interface_t {sizeof(SmiPluginInterface)}");

        SmiTensorSpec s;
        Field("smi_tensor_spec_t.name", &s.Name, &s);
        Field("smi_tensor_spec_t.dtype", &s.Dtype, &s);
        Field("smi_tensor_spec_t.ndim", &s.NDim, &s);
        Field("smi_tensor_spec_t.shape", &s.Shape, &s);
        lines.Add($"smi_tensor_spec_t {sizeof(SmiTensorSpec)}");

        SmiTensor t;
        Field("smi_tensor_t.name", &t.Name, &t);
        Field("smi_tensor_t.dtype", &t.Dtype, &t);
        Field("smi_tensor_t.ndim", &t.NDim, &t);
        Field("smi_tensor_t.shape", &t.Shape, &t);
        Field("smi_tensor_t.data", &t.Data, &t);
        Field("smi_tensor_t.byte_size", &t.ByteSize, &t);
        Field("smi_tensor_t.memory_type", &t.MemoryType, &t);
        Field("smi_tensor_t.device_id", &t.DeviceId, &t);
        Field("smi_tensor_t.release", &t.Release, &t);
        Field("smi_tensor_t.release_context", &t.ReleaseContext, &t);
        lines.Add($"smi_tensor_t {sizeof(SmiTensor)}");

        SmiPluginInterface11 e;
        Field("smi_plugin_interface_1_1_t.capabilities", &e.Capabilities, &e);
        Field("smi_plugin_interface_1_1_t.get_model_io", &e.GetModelIo, &e);
        Field("smi_plugin_interface_1_1_t.infer", &e.Infer, &e);
        Field("smi_plugin_interface_1_1_t.get_last_error", &e.GetLastError, &e);
        lines.Add($"smi_plugin_interface_1_1_t {sizeof(SmiPluginInterface11)}");

        SmiPluginInterface12 e12;
        Field("smi_plugin_interface_1_2_t.infer_with_deadline", &e12.InferWithDeadline, &e12);
        lines.Add($"smi_plugin_interface_1_2_t {sizeof(SmiPluginInterface12)}");

        SmiPluginInterface13 e13;
        Field("smi_plugin_interface_1_3_t.infer_selected", &e13.InferSelected, &e13);
        lines.Add($"smi_plugin_interface_1_3_t {sizeof(SmiPluginInterface13)}");

        SmiPlugin p;
        Field("smi_plugin_t.interface", &p.Interface, &p);
        Field("smi_plugin_t.plugin_id", &p.PluginId, &p);
        Field("smi_plugin_t.smi_version", &p.SmiVersion, &p);
        Field("smi_plugin_t.private_data", &p.PrivateData, &p);
        Field("smi_plugin_t.v1_1", &p.V11, &p);
        Field("smi_plugin_t.v1_2", &p.V12, &p);
        Field("smi_plugin_t.v1_3", &p.V13, &p);
        lines.Add($"smi_plugin_t {sizeof(SmiPlugin)}");

        return string.Join('\n', lines) + "\n";
    }
}
