using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

// The function-table entries. Each validates what C gave it, calls the adapter inside one
// try/catch and returns a status; the message goes to the thread's last error.
public static unsafe partial class SmiPluginHost
{
    private static SmiStatus Fail(SmiStatus status, string message)
    {
        LastError.Set(message);
        return status;
    }

    private static int Length(nuint size, string what) =>
        size <= int.MaxValue ? (int)size : throw new SmiException(SmiStatus.InvalidParam, $"{what} of {size} bytes exceeds 2 GiB");

    [UnmanagedCallersOnly]
    private static SmiStatus Initialize(byte* config)
    {
        try { Plugin.Initialize(Utf8.Read(config)); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus Cleanup()
    {
        try { Plugin.Cleanup(); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle)
    {
        if (metadata == null || handle == null) return Fail(SmiStatus.InvalidParam, "register_model: metadata and handle must not be NULL");
        if (metadata->Name == null) return Fail(SmiStatus.InvalidParam, "register_model: metadata->name must not be NULL");
        try
        {
            var description = new SmiModelDescription(
                Utf8.Read(metadata->Name)!, Utf8.Read(metadata->Framework), Utf8.Read(metadata->Version),
                Utf8.Read(metadata->Path), Utf8.Read(metadata->Config));
            *handle = Plugin.Register(description);
            return SmiStatus.Success;
        }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus UnregisterModel(nint handle)
    {
        try { Plugin.Unregister(handle); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus LoadModel(nint handle, byte* path)
    {
        try { Plugin.Load(handle, Utf8.Read(path)); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus UnloadModel(nint handle)
    {
        try { Plugin.Unload(handle); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize)
    {
        if (outputSize == null) return Fail(SmiStatus.InvalidParam, "inference: output_size must not be NULL");
        if (input == null && inputSize != 0) return Fail(SmiStatus.InvalidParam, "inference: input is NULL but input_size is not 0");
        if (output == null && *outputSize != 0) return Fail(SmiStatus.InvalidParam, "inference: output is NULL but *output_size is not 0");
        try
        {
            var written = Plugin.Inference(handle,
                new ReadOnlySpan<byte>(input, Length(inputSize, "input")),
                new Span<byte>(output, Length(*outputSize, "output")));
            *outputSize = (nuint)written;
            return SmiStatus.Success;
        }
        catch (SmiException e) when (e.Status == SmiStatus.BufferTooSmall)
        {
            *outputSize = (nuint)e.RequiredSize;
            return LastError.From(e);
        }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus BatchInference(nint handle, void** inputs, nuint* inputSizes, nuint batchSize, void** outputs, nuint* outputSizes)
    {
        if (batchSize == 0) return SmiStatus.Success;
        if (inputs == null || inputSizes == null || outputs == null || outputSizes == null)
            return Fail(SmiStatus.InvalidParam, "batch_inference: inputs, input_sizes, outputs and output_sizes must not be NULL");
        try
        {
            for (nuint i = 0; i < batchSize; i++)
            {
                if ((inputs[i] == null && inputSizes[i] != 0) || (outputs[i] == null && outputSizes[i] != 0))
                    throw new SmiException(SmiStatus.InvalidParam, $"batch_inference: request {i} has a NULL buffer with a non-zero size");
                outputSizes[i] = (nuint)Plugin.Inference(handle,
                    new ReadOnlySpan<byte>(inputs[i], Length(inputSizes[i], "input")),
                    new Span<byte>(outputs[i], Length(outputSizes[i], "output")));
            }
            return SmiStatus.Success;
        }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count)
    {
        if (requirements == null && count != 0) return Fail(SmiStatus.InvalidParam, "allocate_resources: requirements is NULL but num_requirements is not 0");
        try { Plugin.Allocate(handle, new ReadOnlySpan<SmiResourceReq>(requirements, Length(count, "requirements"))); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus DeallocateResources(nint handle)
    {
        try { Plugin.Deallocate(handle); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus GetModelInfo(nint handle, byte* info, nuint* infoSize)
    {
        if (infoSize == null) return Fail(SmiStatus.InvalidParam, "get_model_info: info_size must not be NULL");
        try { Utf8.WriteTo(Plugin.Info(handle), info, infoSize); return SmiStatus.Success; }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static byte* GetPluginName() => s_plugin is { } p ? Utf8.Intern(p.Name) : null;

    [UnmanagedCallersOnly]
    private static byte* GetPluginVersion() => s_plugin is { } p ? Utf8.Intern(p.Version) : null;

    [UnmanagedCallersOnly]
    private static byte* GetSupportedFrameworks() => s_plugin is { } p ? Utf8.Intern(p.SupportedFrameworks) : null;

    [UnmanagedCallersOnly]
    private static uint GetSmiVersion() => SmiVersion.Current;

    [UnmanagedCallersOnly]
    private static SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs)
    {
        if (numInputs == null || numOutputs == null) return Fail(SmiStatus.InvalidParam, "get_model_io: num_inputs and num_outputs must not be NULL");
        if ((inputs == null && *numInputs != 0) || (outputs == null && *numOutputs != 0))
            return Fail(SmiStatus.InvalidParam, "get_model_io: NULL array with a non-zero capacity");
        try
        {
            var io = Plugin.Io(handle);
            nuint inCap = *numInputs, outCap = *numOutputs;
            *numInputs = (nuint)io.Inputs.Length;
            *numOutputs = (nuint)io.Outputs.Length;
            if (inCap < (nuint)io.Inputs.Length || outCap < (nuint)io.Outputs.Length)
                return Fail(SmiStatus.BufferTooSmall, $"get_model_io: the model has {io.Inputs.Length} inputs and {io.Outputs.Length} outputs");
            io.Inputs.CopyTo(new Span<SmiTensorSpec>(inputs, io.Inputs.Length));
            io.Outputs.CopyTo(new Span<SmiTensorSpec>(outputs, io.Outputs.Length));
            return SmiStatus.Success;
        }
        catch (Exception e) { return LastError.From(e); }
    }

    [UnmanagedCallersOnly]
    private static SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        InferChecked(handle, inputs, numInputs, outputs, numOutputs, SmiDeadline.None);

    [UnmanagedCallersOnly]
    private static SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadlineNs) =>
        InferChecked(handle, inputs, numInputs, outputs, numOutputs, new SmiDeadline(deadlineNs));

    [UnmanagedCallersOnly]
    private static SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** outputNames, nuint numOutputNames,
        SmiTensor* outputs, nuint* numOutputs, ulong deadlineNs)
    {
        if (outputNames == null && numOutputNames != 0) return Fail(SmiStatus.InvalidParam, "infer_selected: output_names is NULL but num_output_names is not 0");
        if (numOutputNames > 1024) return Fail(SmiStatus.InvalidParam, $"infer_selected: {numOutputNames} output names; at most 1024 are accepted");
        for (nuint i = 0; i < numOutputNames; i++)
        {
            if (outputNames[i] == null) return Fail(SmiStatus.InvalidParam, $"infer_selected: output name {i} is NULL");
            for (nuint k = 0; k < i; k++)
                if (Utf8.Equal(outputNames[k], outputNames[i])) return Fail(SmiStatus.InvalidParam, $"infer_selected: output '{Utf8.Read(outputNames[i])}' is named twice");
        }
        return InferChecked(handle, inputs, numInputs, outputs, numOutputs, new SmiDeadline(deadlineNs), outputNames, (int)numOutputNames);
    }

    /// <summary>Every typed entry: every argument checked, then the plugin's infer, then (with a selection) only the selected outputs kept.</summary>
    private static SmiStatus InferChecked(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, SmiDeadline deadline,
        byte** selected = null, int selectedCount = 0)
    {
        if (numOutputs == null) return Fail(SmiStatus.InvalidParam, "infer: num_outputs must not be NULL");
        if (inputs == null && numInputs != 0) return Fail(SmiStatus.InvalidParam, "infer: inputs is NULL but num_inputs is not 0");
        if (outputs == null && *numOutputs != 0) return Fail(SmiStatus.InvalidParam, "infer: outputs is NULL but *num_outputs is not 0");
        var input = new ReadOnlySpan<SmiTensor>(inputs, (int)Math.Min(numInputs, int.MaxValue));
        for (int i = 0; i < input.Length; i++)
        {
            ref readonly var t = ref input[i];
            if (t.Name == null) return Fail(SmiStatus.InvalidParam, $"infer: input {i} has a NULL name");
            if (t.MemoryType != SmiMemoryType.Cpu && t.MemoryType != SmiMemoryType.CpuPinned && !Plugin.Capabilities.HasFlag(SmiCapabilities.Gpu))
                return Fail(SmiStatus.NotSupported, $"infer: input '{Utf8.Read(t.Name)}' is in GPU memory and this plugin is CPU-only");
            // Any SMI host may call: shape, dtype and bytes must agree (BYTES included) before a framework allocates for them.
            if (SmiTensorRules.Problem(in t) is { } problem) return Fail(SmiStatus.InvalidParam, $"infer: input '{Utf8.Read(t.Name)}' {problem}");
        }
        var writer = new SmiOutputs(outputs, (int)Math.Min(*numOutputs, int.MaxValue), selected, selectedCount);
        try
        {
            Plugin.Infer(handle, input, ref writer, deadline);
            writer.KeepSelected();
            *numOutputs = (nuint)writer.Count;
            return SmiStatus.Success;
        }
        catch (Exception e)
        {
            writer.ReleaseAllocated();
            if (writer.RequiredCount > 0) *numOutputs = (nuint)writer.RequiredCount;
            return LastError.From(e);
        }
    }

    [UnmanagedCallersOnly]
    private static byte* GetLastError() => LastError.Pointer;
}
