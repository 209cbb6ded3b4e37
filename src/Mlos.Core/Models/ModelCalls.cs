using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>Untyped inference as a <see cref="Model.Run"/> call.</summary>
internal readonly unsafe struct InferenceCall(void* input, nuint inputSize, void* output, nuint* outputSize) : IModelCall
{
    public SmiStatus Invoke(Model model, nint handle) => model.Plugin.InferenceCall(handle, input, inputSize, output, outputSize);
    public ulong Deadline => 0;
    public long Rows => 1;
}

/// <summary>Typed inference as a <see cref="Model.Run"/> call.</summary>
/// <remarks><paramref name="deadline"/>: CLOCK_MONOTONIC ns, 0 for none (see SMI 1.2 infer_with_deadline);
/// <paramref name="rows"/>: the inferences the call runs (<see cref="Model.RowsOf"/>; a merged batch's total).</remarks>
internal readonly unsafe struct InferCall(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, OutputSelection selection, long rows) : IModelCall
{
    public SmiStatus Invoke(Model model, nint handle) => model.Reshape is { } reshape
        ? reshape.Infer(model.Plugin, handle, inputs, numInputs, outputs, numOutputs, deadline, selection)
        : model.Plugin.InferCall(handle, inputs, numInputs, outputs, numOutputs, deadline, selection);
    public ulong Deadline => deadline;
    public long Rows => rows;
}
