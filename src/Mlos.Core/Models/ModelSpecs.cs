using System.Runtime.InteropServices;
using System.Text;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Models;

/// <summary>
/// A loaded model's input and output specs, read from its plugin once at load and kept: every
/// typed request is checked against them in the core, whichever front door built it (REST JSON or
/// binary, gRPC, shared memory, the C API), so the checks and their messages are the same
/// everywhere and a plugin never sees a request its model cannot take. A spec without a dtype or
/// a rank (a plugin that does not know them) leaves that part to the plugin.
/// </summary>
public sealed class ModelSpecs
{
    public sealed record Spec(string Name, byte[] Utf8Name, SmiDtype Dtype, long[] Shape);

    public Spec[] Inputs { get; }
    public Spec[] Outputs { get; }

    private ModelSpecs(Spec[] inputs, Spec[] outputs)
    {
        Inputs = inputs;
        Outputs = outputs;
    }

    /// <summary>The plugin's specs for a model just loaded; null when it gives none (or fails to: the plugin then checks requests alone).</summary>
    internal static unsafe ModelSpecs? Read(Model model)
    {
        SmiModelIo? io;
        try { io = model.Plugin.ModelIo(model.Handle); }
        catch (MlosException) { return null; }
        return io is null ? null : From(io, model);
    }

    /// <summary>
    /// A copy of specs a plugin gave (their names are its memory), as the model's clients see them
    /// (<see cref="TensorReshape.ToClient"/>, which refuses a reshape that does not fit the model).
    /// </summary>
    internal static ModelSpecs From(SmiModelIo io, Model model)
    {
        Spec[] inputs = Narrow(Copy(io.Inputs), model), outputs = Narrow(Copy(io.Outputs), model);
        if (model.Reshape is not { } reshape) return new(inputs, outputs);
        bool rules = model.Plugin.SpecsAreRules;
        return new(reshape.ToClient(model.Id, inputs, outputs, rules), reshape.ToClient(model.Id, outputs, inputs, rules));
    }

    /// <summary>
    /// The declared shapes (model option <c>shapes</c>, Triton's config <c>dims</c>) fix what the
    /// plugin left free: a spec [-1,-1] declared [-1,16] is checked as [-1,16]. A declared shape
    /// that does not agree with the plugin's (another rank, another fixed size) changes nothing
    /// here: whoever declared it checks that (Triton's config check names both).
    /// </summary>
    private static Spec[] Narrow(Spec[] specs, Model model)
    {
        if (model.DeclaredShapes.Count == 0) return specs;
        return specs.Select(s =>
        {
            if (!model.DeclaredShapes.TryGetValue(s.Name, out var declared) || declared.Length != s.Shape.Length) return s;
            for (int d = 0; d < declared.Length; d++)
                if (declared[d] >= 0 && s.Shape[d] >= 0 && declared[d] != s.Shape[d]) return s;
            return s with { Shape = s.Shape.Zip(declared, (m, c) => m >= 0 ? m : c).ToArray() };
        }).ToArray();
    }

    private static unsafe Spec[] Copy(SmiTensorSpec[] specs) => specs.Select(s =>
    {
        var name = PluginText.Read(s.Name) ?? "";
        return new Spec(name, Encoding.UTF8.GetBytes(name), s.Dtype, s.Dims.ToArray());
    }).ToArray();

    public TensorDescription[] Describe(bool inputs) =>
        (inputs ? Inputs : Outputs).Select(s => new TensorDescription(s.Name, s.Dtype, s.Shape)).ToArray();

    /// <summary>Every input one of the model's, each once, all of them given (but the <paramref name="optional"/> ones), of its dtype and shape.</summary>
    public unsafe void CheckInputs(string model, SmiTensor* inputs, int count, IReadOnlyList<string> optional)
    {
        Span<bool> given = Inputs.Length <= 256 ? stackalloc bool[Inputs.Length] : new bool[Inputs.Length];
        for (int i = 0; i < count; i++)
        {
            ref readonly var t = ref inputs[i];
            var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name);
            int k = IndexOf(Inputs, name);
            if (k < 0)
                throw new MlosException(SmiStatus.InvalidParam, $"model '{model}' has no input '{Encoding.UTF8.GetString(name)}' (its inputs: {Names(Inputs)})");
            if (given[k]) throw new MlosException(SmiStatus.InvalidParam, $"input '{Inputs[k].Name}' is given twice");
            given[k] = true;
            var spec = Inputs[k];
            if (spec.Dtype != SmiDtype.Invalid && t.Dtype != spec.Dtype)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{spec.Name}' is {SmiDtypes.Name(t.Dtype)}; model '{model}' expects {SmiDtypes.Name(spec.Dtype)}");
            if (spec.Shape.Length > 0 && !Fits(t.Dims, spec.Shape))
                throw new MlosException(SmiStatus.InvalidParam,
                    $"input '{spec.Name}' has shape [{string.Join(",", t.Dims.ToArray())}]; model '{model}' expects [{string.Join(",", spec.Shape)}] (-1: any)");
        }
        for (int k = 0; k < Inputs.Length; k++)
            if (!given[k] && !(optional.Count > 0 && optional.Contains(Inputs[k].Name)))
                throw new MlosException(SmiStatus.InvalidParam, $"model '{model}' needs input '{Inputs[k].Name}' (its inputs: {Names(Inputs)})");
    }

    /// <summary>Every requested output one the model has.</summary>
    public void CheckSelection(string model, in OutputSelection selection)
    {
        for (int i = 0; i < selection.Count; i++)
            if (IndexOf(Outputs, selection.Name(i)) < 0)
                throw NoOutput(model, Encoding.UTF8.GetString(selection.Name(i)), Names(Outputs));
    }

    public static MlosException NoOutput(string model, string name, string outputs) =>
        new(SmiStatus.InvalidParam, $"model '{model}' has no output '{name}' (its outputs: {outputs})");

    private static bool Fits(ReadOnlySpan<long> dims, long[] spec)
    {
        if (dims.Length != spec.Length) return false;
        for (int d = 0; d < dims.Length; d++)
            if (spec[d] >= 0 && dims[d] != spec[d]) return false;
        return true;
    }

    private static int IndexOf(Spec[] specs, ReadOnlySpan<byte> name)
    {
        for (int k = 0; k < specs.Length; k++)
            if (specs[k].Utf8Name.AsSpan().SequenceEqual(name)) return k;
        return -1;
    }

    private static string Names(Spec[] specs) => specs.Length == 0 ? "none" : string.Join(", ", specs.Select(s => s.Name));
}
