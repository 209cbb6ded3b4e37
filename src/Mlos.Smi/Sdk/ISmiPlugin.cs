using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// What a C# plugin author implements. The SDK (<see cref="SmiPluginHost"/>) turns it into an
/// <c>smi_plugin_t</c>: it validates every argument, maps model handles to
/// <typeparamref name="TModel"/> objects, maps exceptions to statuses and keeps the last error.
/// Members with a default body are optional.
/// </summary>
/// <typeparam name="TModel">The plugin's per-model state.</typeparam>
public interface ISmiPlugin<TModel> where TModel : class
{
    /// <summary><c>smi_plugin_t::plugin_id</c>.</summary>
    string PluginId { get; }
    string Name { get; }
    string Version { get; }
    /// <summary>Comma-separated, e.g. "onnx,onnxruntime".</summary>
    string SupportedFrameworks => "";
    SmiCapabilities Capabilities => SmiCapabilities.None;

    /// <summary><paramref name="config"/> is JSON or a plain label; null when the host passed NULL.</summary>
    void Initialize(string? config);
    void Cleanup() { }

    TModel RegisterModel(SmiModelDescription model);
    void UnregisterModel(TModel model) { }
    /// <summary><paramref name="path"/> is null when the host means the registered path.</summary>
    void LoadModel(TModel model, string? path) { }
    void UnloadModel(TModel model) { }

    /// <summary>
    /// Untyped inference: returns the number of bytes written to <paramref name="output"/>, or throws
    /// <see cref="SmiException.BufferTooSmall"/> with the size needed. By default, the MLOS
    /// convention (<see cref="MlosConvention"/>) over <see cref="Infer"/> and <see cref="GetModelIo"/>.
    /// </summary>
    int Inference(TModel model, ReadOnlySpan<byte> input, Span<byte> output) =>
        MlosConvention.Run(input, output, GetModelIo(model).Inputs, (ReadOnlySpan<SmiTensor> i, ref SmiOutputs o) => Infer(model, i, ref o));

    void AllocateResources(TModel model, ReadOnlySpan<SmiResourceReq> requirements) =>
        throw new NotSupportedException($"{Name} does not take resource requests");
    void DeallocateResources(TModel model) { }

    /// <summary>A JSON description of the model.</summary>
    string GetModelInfo(TModel model) => throw new NotSupportedException($"{Name} has no model info");

    /// <summary>Input and output specs; names must be plugin-owned (see <see cref="Utf8.Intern"/>).</summary>
    SmiModelIo GetModelIo(TModel model) => throw new NotSupportedException($"{Name} has no model I/O specs");

    /// <summary>
    /// Typed inference. Inputs are read in place; write each output through
    /// <paramref name="outputs"/>, which applies smi_spec.h's ownership rule.
    /// </summary>
    void Infer(TModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs) =>
        throw new NotSupportedException($"{Name} has no typed infer");

    /// <summary>
    /// Typed inference that must stop at <paramref name="deadline"/> (SMI 1.2
    /// <c>infer_with_deadline</c>) with <see cref="SmiStatus.Timeout"/>. A plugin whose framework
    /// can interrupt a run overrides this; by default the deadline is checked before the run starts.
    /// </summary>
    void Infer(TModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, SmiDeadline deadline)
    {
        deadline.ThrowIfPassed(Name);
        Infer(model, inputs, ref outputs);
    }
}

/// <summary>Managed copy of <c>smi_model_metadata_t</c>, taken during register_model.</summary>
public sealed record SmiModelDescription(string Name, string? Framework, string? Version, string? Path, string? Config);

/// <summary>Input and output specs of a model.</summary>
public sealed record SmiModelIo(SmiTensorSpec[] Inputs, SmiTensorSpec[] Outputs);
