using System.Collections;
using System.Runtime.CompilerServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Typed inference on a TorchScript module: inputs become CPU tensors over the caller's memory
/// (no copy), forward runs in inference mode, and whatever it returns (a tensor, a tuple or
/// list of tensors, a dict of tensors, nested) is flattened into named outputs.
/// </summary>
internal static unsafe class TorchRunner
{
    public static void Infer(TorchModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        using var lease = model.Acquire();
        using var scope = torch.NewDisposeScope();
        using var mode = torch.inference_mode();
        var args = Arguments(model, inputs);
        object result;
        try { result = lease.Module.forward(args); }
        catch (ArgumentOutOfRangeException)
        {
            // TorchSharp 0.107 converts tensors, tuples and lists of forward's result, and fails
            // this way on anything else (a Dict[str, Tensor] among them).
            throw new SmiException(SmiStatus.NotSupported,
                $"model '{model.Name}' returned a value TorchSharp 0.107 cannot convert (Dict outputs among them): return a tensor, a tuple or a list of tensors");
        }
        catch (Exception e) when (e is not SmiException)
        {
            throw new SmiException(SmiStatus.Runtime, $"model '{model.Name}' failed in forward: {e.Message.Trim()}");
        }
        var flat = new List<(string Name, torch.Tensor Tensor)>();
        Flatten(result, null, flat);
        outputs.Reserve(flat.Count);
        foreach (var (name, tensor) in flat)
        {
            var cpu = tensor.device_type == DeviceType.CPU ? tensor.contiguous() : tensor.cpu().contiguous();
            var bytes = cpu.bytes;
            bytes.CopyTo(outputs.Add(Utf8.Intern(name), TorchTypes.ToSmi(cpu.dtype), cpu.shape, (nuint)bytes.Length));
        }
    }

    /// <summary>The forward arguments in the model's order: by name when the inputs are named, else as given.</summary>
    private static object[] Arguments(TorchModel model, ReadOnlySpan<SmiTensor> inputs)
    {
        var specs = model.Inputs;
        if (specs.Length > 0 && inputs.Length != specs.Length)
            throw new SmiException(SmiStatus.InvalidParam,
                $"model '{model.Name}' takes {specs.Length} inputs ({string.Join(", ", specs.Select(s => s.Name))}); {inputs.Length} given");
        var args = new object[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            ref readonly var t = ref inputs[i];
            int position = i;
            TorchSpec? spec = null;
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
            args[position] = ToTensor(model, spec, in t);
        }
        return args;
    }

    private static torch.Tensor ToTensor(TorchModel model, TorchSpec? spec, in SmiTensor t)
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
        long count = 1;
        foreach (var d in shape) count = d < 0 ? throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' has a negative dimension") : count * d;
        int size = SmiDtypes.ElementSize(t.Dtype);
        if (size == 0) throw new SmiException(SmiStatus.InvalidParam, $"input '{name}': libtorch has no tensor type for {SmiDtypes.Name(t.Dtype)}");
        if ((long)t.ByteSize != count * size)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' has {t.ByteSize} bytes; shape [{string.Join(",", shape.ToArray())}] of {SmiDtypes.Name(t.Dtype)} needs {count * size}");
        var tensor = TorchShim.FromBlob(t.Data, shape, TorchTypes.ToTorch(t.Dtype));
        return model.Device.type == DeviceType.CPU ? tensor : tensor.to(model.Device);
    }

    private static bool Fits(long[] dims, ReadOnlySpan<long> shape)
    {
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] >= 0 && dims[i] != shape[i]) return false;
        return true;
    }

    /// <summary>Names: dict keys where there are some, else output_N in order.</summary>
    internal static void Flatten(object? value, string? name, List<(string, torch.Tensor)> flat)
    {
        switch (value)
        {
            case torch.Tensor t:
                flat.Add((name ?? $"output_{flat.Count}", t));
                break;
            case IDictionary dict:
                foreach (DictionaryEntry e in dict) Flatten(e.Value, e.Key.ToString(), flat);
                break;
            case ITuple tuple:
                for (int i = 0; i < tuple.Length; i++) Flatten(tuple[i], null, flat);
                break;
            case IEnumerable items when value is not string:
                foreach (var item in items) Flatten(item, null, flat);
                break;
            default:
                throw new SmiException(SmiStatus.NotSupported,
                    $"forward returned a {value?.GetType().Name ?? "null"}; outputs must be tensors, tuples or lists of tensors, or dicts of tensors");
        }
    }
}
