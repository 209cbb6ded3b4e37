using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Fuzz;

/// <summary>
/// The untyped MLOS convention, <see cref="MlosConvention.Run"/>, over a model that echoes its
/// inputs. Input: one byte that picks the model's declared inputs (several named ones, a single
/// one that also takes raw bytes, or none, where dtypes are guessed), then the request.
/// Only <see cref="SmiException"/> may escape; anything else is a crash.
/// </summary>
internal static unsafe class ConventionTarget
{
    private static readonly SmiTensorSpec[][] s_models =
    [
        [Spec("pixels", SmiDtype.Fp32, -1, 16), Spec("ids", SmiDtype.Int64, -1), Spec("text", SmiDtype.Bytes, -1)],
        [Spec("pixels", SmiDtype.Fp32, -1, 16)],
        [],
    ];

    private static readonly byte[] s_output = new byte[1 << 16];

    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        try { MlosConvention.Run(input[1..], s_output, s_models[input[0] % s_models.Length], Echo); }
        catch (SmiException) { }
    }

    private static void Echo(ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        outputs.Reserve(inputs.Length);
        for (int i = 0; i < inputs.Length; i++)
        {
            ref readonly var t = ref inputs[i];
            var copy = outputs.Add(Utf8.Intern($"output_{i}"), t.Dtype, t.Dims, t.ByteSize);
            new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteSize)).CopyTo(copy);
        }
    }

    private static SmiTensorSpec Spec(string name, SmiDtype dtype, params long[] dims)
    {
        var s = new SmiTensorSpec { Name = Utf8.Intern(name), Dtype = dtype, NDim = (uint)dims.Length };
        dims.CopyTo(s.Shape);
        return s;
    }
}
