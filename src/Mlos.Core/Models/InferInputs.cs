using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>
/// The check every typed request passes before a batcher or plugin sees it, whichever front door
/// built it (KServe JSON or binary, the C API): names present, shapes that multiply without
/// overflow, and bytes that match the shape and dtype (<see cref="SmiTensorRules.Problem"/>).
/// </summary>
public static unsafe class InferInputs
{
    /// <summary>More inputs than any model has; a count beyond it is a caller's mistake, not a request.</summary>
    public const int MaxInputs = 1024;

    /// <summary>
    /// The one check of a typed request: the tensors themselves (<see cref="Check(SmiTensor*, nuint)"/>),
    /// the requested output names, and, when the model has given its specs, both against them
    /// (<see cref="ModelSpecs"/>).
    /// </summary>
    public static void Check(Model model, SmiTensor* inputs, nuint numInputs, in OutputSelection selection)
    {
        try
        {
            Check(inputs, numInputs);
            if (model.MaxRows > 0) CheckRows(model, inputs, numInputs);
            selection.Check();
            if (model.Specs is { } specs && model.Plugin.SpecsAreRules)
            {
                specs.CheckInputs(model.Id, inputs, (int)numInputs, model.OptionalInputs);
                specs.CheckSelection(model.Id, selection);
            }
            // After the specs (which give the client's shape in their message): a reshape the request cannot take, for plugins without specs too.
            model.Reshape?.CheckInputs(inputs, (int)numInputs);
        }
        catch (MlosException)
        {
            // A failed request of this model, as Triton counts one, though nothing ran (no clock read on the way in).
            model.Statistics.Refused();
            throw;
        }
    }

    /// <summary>A model with a batch limit (Triton's max_batch_size) takes no more rows along dim 0 in one request.</summary>
    private static void CheckRows(Model model, SmiTensor* inputs, nuint numInputs)
    {
        for (int i = 0; i < (int)numInputs; i++)
        {
            ref readonly var t = ref inputs[i];
            if (t.NDim > 0 && t.Shape[0] > model.MaxRows)
                throw new MlosException(SmiStatus.InvalidParam,
                    $"inference request batch-size must be <= {model.MaxRows} for '{model.Id}' (input '{Smi.Sdk.Utf8.Read(t.Name)}' has {t.Shape[0]} rows)");
        }
    }

    public static void Check(SmiTensor* inputs, nuint numInputs)
    {
        if (numInputs > MaxInputs)
            throw new MlosException(SmiStatus.InvalidParam, $"{numInputs} inputs; at most {MaxInputs} are accepted");
        if (inputs == null && numInputs > 0) throw new MlosException(SmiStatus.InvalidParam, "inputs is NULL");
        for (int i = 0; i < (int)numInputs; i++)
        {
            ref readonly var t = ref inputs[i];
            if (t.Name == null) throw new MlosException(SmiStatus.InvalidParam, $"input {i} has no name");
            if (SmiTensorRules.Problem(in t) is { } problem)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{Smi.Sdk.Utf8.Read(t.Name)}' {problem}");
        }
    }
}
