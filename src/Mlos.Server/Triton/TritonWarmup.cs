using System.Runtime.InteropServices;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server.Triton;

/// <summary>
/// Runs a config's <c>model_warmup</c> samples on a model just loaded, before it is reported
/// loaded: each sample <c>count</c> times through the core's typed infer (checked like any
/// request), with <c>batch_size</c> rows when the model batches. Data: zeros, random values, or
/// one row read raw from <c>&lt;model&gt;/warmup/&lt;file&gt;</c> (BYTES as 4-byte length + bytes)
/// repeated for every row. A sample that fails fails the load, naming the sample and the reason.
/// </summary>
internal static unsafe class TritonWarmup
{
    /// <summary>Most bytes one warm-up input may take: a sample is a few rows, not a data set.</summary>
    public const long MaxInputBytes = 64L << 20;

    public static void Run(MlosCore core, Model model, TritonModelConfig config, string folder)
    {
        // Once for every instance: requests in a row go to the instances in turn (all idle).
        for (int instance = 0; instance < model.Instances; instance++)
        foreach (var sample in config.Warmups)
        {
            try { RunSample(core, model, config, sample, folder); }
            catch (MlosException e) { throw new MlosException(e.Status == SmiStatus.NotFound ? SmiStatus.NotFound : SmiStatus.InvalidParam, $"model '{model.Id}' warm-up sample '{sample.Name}' failed: {e.Message}"); }
        }
    }

    private static void RunSample(MlosCore core, Model model, TritonModelConfig config, WarmupConfig sample, string folder)
    {
        bool batched = config.MaxBatchSize is > 0 || (config.MaxBatchSize is null && model.ActiveBatching is not null);
        if (!batched && sample.BatchSize > 1)
            throw new MlosException(SmiStatus.InvalidParam, $"batch_size {sample.BatchSize} needs a model that batches (max_batch_size > 0)");
        var random = new Random(20261201);
        var data = sample.Inputs.Select(i => Data(i, batched ? sample.BatchSize : 1, folder, random)).ToArray();
        var handles = data.Select(d => GCHandle.Alloc(d, GCHandleType.Pinned)).ToArray();
        var names = sample.Inputs.Select(i => (nint)Utf8.Allocate(i.Name)).ToArray();
        try
        {
            var inputs = new SmiTensor[sample.Inputs.Count];
            for (int k = 0; k < inputs.Length; k++)
            {
                var input = sample.Inputs[k];
                long[] shape = batched ? [sample.BatchSize, .. input.Dims] : input.Dims;
                if (shape.Length > SmiVersion.MaxDims) throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}' has more than {SmiVersion.MaxDims} dims");
                inputs[k] = new SmiTensor { Name = (byte*)names[k], Dtype = input.Dtype, NDim = (uint)shape.Length, Data = (void*)handles[k].AddrOfPinnedObject(), ByteSize = (nuint)data[k].Length };
                for (int d = 0; d < shape.Length; d++) inputs[k].Shape[d] = shape[d];
            }
            var outputs = new SmiTensor[64];
            for (int run = 0; run < sample.Count; run++)
            {
                fixed (SmiTensor* i = inputs)
                fixed (SmiTensor* o = outputs)
                {
                    nuint n = (nuint)outputs.Length;
                    new Span<SmiTensor>(o, outputs.Length).Clear();
                    try { core.Infer(model, i, (nuint)inputs.Length, o, &n); }
                    finally
                    {
                        for (int k = 0; k < outputs.Length; k++)
                            if (o[k].Release != null) o[k].Release(&o[k]);
                    }
                }
            }
        }
        finally
        {
            foreach (var h in handles) h.Free();
            foreach (var n in names) NativeMemory.Free((void*)n);
        }
    }

    /// <summary>The bytes of one input: <paramref name="rows"/> copies of one row.</summary>
    private static byte[] Data(WarmupInput input, int rows, string folder, Random random)
    {
        if (!SmiTensorRules.TryElementCount(input.Dims, out long elements) || elements > MaxInputBytes)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}' has dims [{string.Join(",", input.Dims)}]: more elements than a warm-up input may have");
        int element = SmiDtypes.ElementSize(input.Dtype);
        byte[] row;
        if (input.Data == WarmupData.File)
        {
            var path = Path.Combine(folder, "warmup", input.File!);
            if (!File.Exists(path)) throw new MlosException(SmiStatus.NotFound, $"input '{input.Name}': no file warmup/{input.File}");
            if (new FileInfo(path).Length > MaxInputBytes) throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}': warmup/{input.File} is larger than {MaxInputBytes} bytes");
            row = File.ReadAllBytes(path);
            if (element > 0 && row.LongLength != elements * element)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}': warmup/{input.File} holds {row.Length} bytes; dims [{string.Join(",", input.Dims)}] of {TritonModelConfig.DataTypeName(input.Dtype)} take {elements * element}");
        }
        else if (element == 0) row = new byte[checked(elements * 4)]; // BYTES: every element empty (random data falls back to zeros, as in Triton)
        else
        {
            if (elements * element > MaxInputBytes) throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}' would take more than {MaxInputBytes} bytes");
            row = new byte[elements * element];
            if (input.Data == WarmupData.Random) Fill(row, input.Dtype, random);
        }
        if ((long)row.Length * rows > MaxInputBytes) throw new MlosException(SmiStatus.InvalidParam, $"input '{input.Name}' would take more than {MaxInputBytes} bytes");
        var all = new byte[row.Length * rows];
        for (int r = 0; r < rows; r++) row.CopyTo(all, r * row.Length);
        return all;
    }

    /// <summary>Random values that are valid for the dtype: floats in [0, 1) (no NaN from random bits), integers of any value, booleans 0 or 1.</summary>
    private static void Fill(byte[] bytes, SmiDtype dtype, Random random)
    {
        switch (dtype)
        {
            case SmiDtype.Fp32:
                foreach (ref var v in MemoryMarshal.Cast<byte, float>(bytes.AsSpan())) v = random.NextSingle();
                break;
            case SmiDtype.Fp64:
                foreach (ref var v in MemoryMarshal.Cast<byte, double>(bytes.AsSpan())) v = random.NextDouble();
                break;
            case SmiDtype.Fp16:
                foreach (ref var v in MemoryMarshal.Cast<byte, Half>(bytes.AsSpan())) v = (Half)random.NextSingle();
                break;
            case SmiDtype.Bf16:
                foreach (ref var v in MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan())) v = (ushort)(BitConverter.SingleToUInt32Bits(random.NextSingle()) >> 16);
                break;
            case SmiDtype.Bool:
                for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)random.Next(2);
                break;
            default:
                random.NextBytes(bytes);
                break;
        }
    }
}
