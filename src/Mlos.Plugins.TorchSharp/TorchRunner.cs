using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Typed inference on a TorchScript module: inputs become CPU tensors over the caller's memory
/// (no copy), forward runs in inference mode, and what it returns (a tensor, tuples and lists
/// of tensors, nested) is flattened into outputs named by the model config or output_N.
/// </summary>
internal static unsafe class TorchRunner
{
    public static void Infer(TorchModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        using var lease = model.Loaded.Acquire();
        var module = lease.Value;
        using var scope = torch.NewDisposeScope();
        using var mode = torch.inference_mode();
        var args = Arguments(model, module, inputs);
        List<torch.Tensor> results;
        try { results = TorchShim.Forward(module.Handle, args); }
        catch (Exception e) when (e is not SmiException)
        {
            throw new SmiException(SmiStatus.Runtime, $"model '{model.Name}' failed in forward: {e.Message.Trim()}");
        }
        outputs.Reserve(results.Count);
        // Dimension by dimension: Tensor.shape hands the shim a delegate, which NativeAOT
        // marshals afresh on every call.
        var shape = new long[SmiVersion.MaxDims + 1];
        for (int i = 0; i < results.Count; i++)
        {
            var tensor = results[i];
            var cpu = tensor.device_type == DeviceType.CPU ? tensor.contiguous() : tensor.cpu().contiguous();
            var bytes = cpu.bytes;
            var name = i < model.Outputs.Length ? model.Outputs[i].NativeName : OutputName(i);
            int rank = (int)Math.Min(cpu.ndim, shape.Length);
            for (int d = 0; d < rank; d++) shape[d] = cpu.size(d);
            bytes.CopyTo(outputs.Add(name, TorchTypes.ToSmi(cpu.dtype), shape.AsSpan(0, rank), (nuint)bytes.Length));
        }
    }

    private static readonly List<nint> s_outputNames = [];

    /// <summary>output_N, interned once per index.</summary>
    private static byte* OutputName(int i)
    {
        lock (s_outputNames)
        {
            while (s_outputNames.Count <= i) s_outputNames.Add((nint)Utf8.Intern($"output_{s_outputNames.Count}"));
            return (byte*)s_outputNames[i];
        }
    }

    /// <summary>The forward arguments in the model's order: by name when the inputs are named, else as given.</summary>
    private static torch.Tensor[] Arguments(TorchModel model, TorchModule module, ReadOnlySpan<SmiTensor> inputs)
    {
        var specs = module.Inputs;
        if (specs.Length > 0 && inputs.Length != specs.Length)
            throw new SmiException(SmiStatus.InvalidParam,
                $"model '{model.Name}' takes {specs.Length} inputs ({string.Join(", ", specs.Select(s => s.Name))}); {inputs.Length} given");
        var args = new torch.Tensor[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            ref readonly var t = ref inputs[i];
            int position = i;
            TensorSpec? spec = null;
            if (specs.Length > 0)
            {
                var name = Utf8.Read(t.Name);
                position = Array.FindIndex(specs, s => s.Name == name);
                if (position < 0)
                    throw new SmiException(SmiStatus.InvalidParam,
                        $"model '{model.Name}' has no input '{name}' (inputs: {string.Join(", ", specs.Select(s => s.Name))})");
                if (args[position] is not null) throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' is given twice");
                spec = specs[position];
            }
            args[position] = ToTensor(model, module, spec, in t);
        }
        return args;
    }

    private static torch.Tensor ToTensor(TorchModel model, TorchModule module, TensorSpec? spec, in SmiTensor t)
    {
        var name = spec?.Name ?? Utf8.Read(t.Name) ?? "(unnamed)";
        if (spec is { Dtype: not SmiDtype.Invalid } && t.Dtype != spec.Dtype)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' is {SmiDtypes.Name(t.Dtype)}; model '{model.Name}' expects {SmiDtypes.Name(spec.Dtype)}");
        var shape = t.Dims;
        if (spec?.Dims is { } dims && (dims.Length != shape.Length || !dims.AsSpan().SequenceEqual(shape) && !Fits(dims, shape)))
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{name}' has shape [{string.Join(",", shape.ToArray())}]; model '{model.Name}' expects [{string.Join(",", dims)}] (-1: any)");
        if (t.MemoryType == SmiMemoryType.Gpu)
            throw new SmiException(SmiStatus.NotSupported, $"input '{name}' is in GPU memory; pass host memory");
        // Bytes against shape were checked at the SDK's infer entry (SmiTensorRules); BYTES has no tensor here.
        if (SmiDtypes.ElementSize(t.Dtype) == 0) throw new SmiException(SmiStatus.InvalidParam, $"input '{name}': libtorch has no tensor type for {SmiDtypes.Name(t.Dtype)}");
        var tensor = TorchShim.FromBlob(t.Data, shape, TorchTypes.ToTorch(t.Dtype));
        return module.Device.type == DeviceType.CPU ? tensor : tensor.to(module.Device);
    }

    private static bool Fits(long[] dims, ReadOnlySpan<long> shape)
    {
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] >= 0 && dims[i] != shape[i]) return false;
        return true;
    }
}
