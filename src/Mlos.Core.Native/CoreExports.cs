using System.Runtime.InteropServices;
using System.Text;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Native;

/// <summary>
/// The one boundary file for include/mlos/mlos_core.h. Each export validates its arguments,
/// calls <see cref="MlosCore"/> inside one try/catch and returns a status; the message of a
/// failure is the calling thread's <c>mlos_core_last_error()</c>. Nothing thrown leaves.
/// </summary>
public static unsafe class CoreExports
{
    /// <summary>MLOS_CORE_VERSION of mlos_core.h.</summary>
    private const uint CoreVersion = (0u << 16) | (1u << 8) | 0u;

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_version")]
    public static uint Version() => CoreVersion;

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_smi_version")]
    public static uint SmiVersionExport() => SmiVersion.Current;

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_last_error")]
    public static byte* LastErrorExport() => LastError.Pointer;

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_create")]
    public static SmiStatus Create(byte* configJson, nint* core)
    {
        if (core == null) return Fail(SmiStatus.InvalidParam, "mlos_core_create: core must not be NULL");
        try
        {
            *core = CoreHandles.Add(MlosCore.Create(Utf8.Read(configJson)));
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_destroy")]
    public static SmiStatus Destroy(nint core)
    {
        try
        {
            // Removed only once destroyed: a BUSY destroy (calls still running) can be retried.
            CoreHandles.Get(core).Dispose();
            CoreHandles.Remove(core);
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_load_plugin")]
    public static SmiStatus LoadPlugin(nint core, byte* path, byte* pluginId, byte* config)
    {
        try
        {
            CoreHandles.Get(core).LoadPluginAt(NativePath.FromC(path) ?? throw Null("path"), Id(pluginId, "plugin_id"), Utf8.Read(config));
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_load_plugin_with_options")]
    public static SmiStatus LoadPluginWithOptions(nint core, byte* path, byte* pluginId, byte* config, byte* options)
    {
        try
        {
            var parsed = Mlos.Core.Isolation.IsolationOptions.Parse(Utf8.Read(options), "plugin options");
            CoreHandles.Get(core).LoadPluginAt(NativePath.FromC(path) ?? throw Null("path"), Id(pluginId, "plugin_id"), Utf8.Read(config), options: parsed);
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_list_plugins")]
    public static SmiStatus ListPlugins(nint core, byte* json, nuint* jsonSize)
    {
        try { return WriteText(RegistryJson.Plugins(CoreHandles.Get(core)), json, jsonSize); }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_list_models")]
    public static SmiStatus ListModels(nint core, byte* json, nuint* jsonSize)
    {
        try { return WriteText(RegistryJson.Models(CoreHandles.Get(core)), json, jsonSize); }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_model_info")]
    public static SmiStatus ModelInfo(nint core, byte* modelId, byte* json, nuint* jsonSize)
    {
        try
        {
            var versions = CoreHandles.Get(core).GetVersions(Required(modelId, "model_id"));
            return WriteText(RegistryJson.ModelInfo(versions.Current, versions), json, jsonSize);
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_register_model")]
    public static SmiStatus RegisterModel(nint core, byte* modelId, byte* pluginId, byte* path, byte* optionsJson)
    {
        try
        {
            CoreHandles.Get(core).RegisterModelAt(Required(modelId, "model_id"), Required(pluginId, "plugin_id"), NativePath.FromC(path), Utf8.Read(optionsJson));
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_load_model")]
    public static SmiStatus LoadModel(nint core, byte* modelId)
    {
        try { CoreHandles.Get(core).LoadModel(Required(modelId, "model_id")); return SmiStatus.Success; }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_unload_model")]
    public static SmiStatus UnloadModel(nint core, byte* modelId)
    {
        try { CoreHandles.Get(core).UnloadModel(Required(modelId, "model_id")); return SmiStatus.Success; }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_unregister_model")]
    public static SmiStatus UnregisterModel(nint core, byte* modelId)
    {
        try { CoreHandles.Get(core).UnregisterModel(Required(modelId, "model_id")); return SmiStatus.Success; }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_allocate_resources")]
    public static SmiStatus AllocateResources(nint core, byte* modelId, SmiResourceReq* requirements, nuint count)
    {
        if (requirements == null && count != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_allocate_resources: requirements is NULL but num_requirements is not 0");
        try { CoreHandles.Get(core).AllocateResources(Required(modelId, "model_id"), requirements, count); return SmiStatus.Success; }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_deallocate_resources")]
    public static SmiStatus DeallocateResources(nint core, byte* modelId)
    {
        try { CoreHandles.Get(core).DeallocateResources(Required(modelId, "model_id")); return SmiStatus.Success; }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_inference")]
    public static SmiStatus Inference(nint core, byte* modelId, void* input, nuint inputSize, void* output, nuint* outputSize)
    {
        if (modelId == null) return Fail(SmiStatus.InvalidParam, "mlos_core_inference: model_id must not be NULL");
        if (outputSize == null) return Fail(SmiStatus.InvalidParam, "mlos_core_inference: output_size must not be NULL");
        if (input == null && inputSize != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_inference: input is NULL but input_size is not 0");
        if (output == null && *outputSize != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_inference: output is NULL but *output_size is not 0");
        try
        {
            var c = CoreHandles.Get(core);
            c.Inference(FindModel(c, modelId), input, inputSize, output, outputSize);
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_infer")]
    public static SmiStatus Infer(nint core, byte* modelId, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs)
    {
        if (modelId == null) return Fail(SmiStatus.InvalidParam, "mlos_core_infer: model_id must not be NULL");
        if (numOutputs == null) return Fail(SmiStatus.InvalidParam, "mlos_core_infer: num_outputs must not be NULL");
        if (inputs == null && numInputs != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_infer: inputs is NULL but num_inputs is not 0");
        if (outputs == null && *numOutputs != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_infer: outputs is NULL but *num_outputs is not 0");
        try
        {
            var c = CoreHandles.Get(core);
            c.Infer(FindModel(c, modelId), inputs, numInputs, outputs, numOutputs);
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_infer_selected")]
    public static SmiStatus InferSelected(nint core, byte* modelId, SmiTensor* inputs, nuint numInputs, byte** outputNames, nuint numOutputNames,
        SmiTensor* outputs, nuint* numOutputs)
    {
        if (modelId == null) return Fail(SmiStatus.InvalidParam, "mlos_core_infer_selected: model_id must not be NULL");
        if (numOutputs == null) return Fail(SmiStatus.InvalidParam, "mlos_core_infer_selected: num_outputs must not be NULL");
        if (inputs == null && numInputs != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_infer_selected: inputs is NULL but num_inputs is not 0");
        if (outputs == null && *numOutputs != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_infer_selected: outputs is NULL but *num_outputs is not 0");
        if (outputNames == null && numOutputNames != 0) return Fail(SmiStatus.InvalidParam, "mlos_core_infer_selected: output_names is NULL but num_output_names is not 0");
        if (numOutputNames > (nuint)Mlos.Core.Models.InferInputs.MaxInputs)
            return Fail(SmiStatus.InvalidParam, $"mlos_core_infer_selected: {numOutputNames} output names; at most {Mlos.Core.Models.InferInputs.MaxInputs} are accepted");
        try
        {
            var c = CoreHandles.Get(core);
            c.Infer(FindModel(c, modelId), inputs, numInputs, outputs, numOutputs, new Mlos.Core.Models.OutputSelection(outputNames, (int)numOutputNames));
            return SmiStatus.Success;
        }
        catch (Exception e) { return Fail(e); }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_release_outputs")]
    public static void ReleaseOutputs(SmiTensor* outputs, nuint count)
    {
        if (outputs == null) return;
        for (nuint i = 0; i < count; i++)
        {
            SmiTensor* t = &outputs[i];
            if (t->Release == null) continue;
            // Cleared before the call: a second release_outputs on the same array frees nothing.
            var release = t->Release;
            t->Release = null;
            release(t);
            t->ReleaseContext = null;
            t->Data = null;
            t->ByteSize = 0;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "mlos_core_smi_layout")]
    public static SmiStatus SmiLayoutExport(byte* text, nuint* textSize)
    {
        try { return WriteText(Encoding.UTF8.GetBytes(SmiLayout.Describe()), text, textSize); }
        catch (Exception e) { return Fail(e); }
    }

    /// <summary>Finds a model by a C string without allocating a managed string.</summary>
    private static Models.Model FindModel(MlosCore core, byte* modelId) => core.GetModel(modelId);

    /// <summary>An id argument: NULL refused, bytes that are not UTF-8 refused (see <see cref="StrictUtf8"/>).</summary>
    private static string Required(byte* s, string name) => StrictUtf8.Read(s, name) ?? throw Null(name);

    private static string? Id(byte* s, string name) => StrictUtf8.Read(s, name);

    private static MlosException Null(string name) => new(SmiStatus.InvalidParam, $"{name} must not be NULL");

    /// <summary>Copies NUL-terminated text out under the size protocol of mlos_core.h.</summary>
    private static SmiStatus WriteText(byte[] utf8, byte* buffer, nuint* size)
    {
        if (size == null) return Fail(SmiStatus.InvalidParam, "the size argument must not be NULL");
        nuint need = (nuint)utf8.Length + 1, given = *size;
        *size = need;
        if (buffer == null || given < need)
            return Fail(SmiStatus.BufferTooSmall, $"buffer too small: {need} bytes needed, {given} given");
        utf8.CopyTo(new Span<byte>(buffer, utf8.Length));
        buffer[utf8.Length] = 0;
        return SmiStatus.Success;
    }

    private static SmiStatus Fail(SmiStatus status, string message)
    {
        LastError.Set(message);
        return status;
    }

    private static SmiStatus Fail(Exception e) =>
        e is MlosException m ? Fail(m.Status, m.Message) : LastError.From(e);
}
