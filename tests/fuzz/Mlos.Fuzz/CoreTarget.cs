using System.Runtime.InteropServices;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Fuzz;

/// <summary>
/// The managed core's entry points for what C callers and plugins hand it. Input: one byte that
/// picks the entry, then its argument:
/// <list type="bullet">
/// <item>0: <see cref="CoreConfig.Parse"/> on the rest as text (mlos_core_create's config).</item>
/// <item>1: <see cref="ModelOptions.Parse"/> (mlos_core_register_model's options).</item>
/// <item>2: typed inputs built from the rest (<see cref="Tensors"/>), through <see cref="InferInputs.Check"/>.</item>
/// <item>3: the same tensors as a plugin's outputs, through <see cref="PluginAnswers.CheckOutputs"/>,
/// with the count the plugin claims and the slots the caller lent taken from the input too.</item>
/// <item>4: the rest as an id (<see cref="StrictUtf8"/>, a model lookup by UTF-8 bytes) and as a path.</item>
/// </list>
/// Only <see cref="MlosException"/> may escape; anything else is a crash. The harness never
/// lies about its own memory: every data pointer covers the byte_size it is given.
/// </summary>
internal static unsafe class CoreTarget
{
    private static readonly MlosCore s_core = new();
    private static int s_released, s_allocated;

    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        var rest = input[1..];
        try
        {
            switch (input[0] % 5)
            {
                case 0: CoreConfig.Parse(System.Text.Encoding.UTF8.GetString(rest)); break;
                case 1: ModelOptions.Parse(System.Text.Encoding.UTF8.GetString(rest)); break;
                case 2: CheckInputs(rest); break;
                case 3: CheckOutputs(rest); break;
                case 4: Names(rest); break;
            }
        }
        catch (MlosException) { }
    }

    private static void CheckInputs(ReadOnlySpan<byte> bytes)
    {
        using var tensors = new Tensors(bytes, lendOutputs: false);
        InferInputs.Check(tensors.Pointer, (nuint)tensors.Count);
    }

    /// <summary>A plugin's answer: released allocations must match made ones, whatever the verdict.</summary>
    private static void CheckOutputs(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 2) return;
        nuint claimed = bytes[0];
        using var tensors = new Tensors(bytes[1..], lendOutputs: true);
        var lent = new PluginAnswers.Lent[tensors.Count];
        // What the caller lent: the first half of the slots had buffers.
        for (int i = 0; i < lent.Length; i++)
            lent[i] = i < lent.Length / 2 ? new PluginAnswers.Lent { Data = tensors.Pointer[i].Data, ByteSize = tensors.Pointer[i].ByteSize } : default;
        s_allocated = s_released = 0;
        for (int i = 0; i < lent.Length; i++) // a slot without a lent buffer is the plugin's to fill
            if (lent[i].Data == null && tensors.Pointer[i].Release != null) s_allocated++;
        var breach = PluginAnswers.CheckOutputs("fuzz", tensors.Pointer, claimed, lent);
        if (breach is not null && s_released != s_allocated)
            throw new InvalidOperationException($"a broken answer released {s_released} of the plugin's {s_allocated} outputs");
        if (breach is null && s_released != 0)
            throw new InvalidOperationException("an accepted answer had outputs released");
    }

    private static void Names(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        StrictUtf8.Decode(bytes, chars, "id");
        if (bytes.IndexOf((byte)0) < 0) s_core.GetModel(bytes);
        var path = NativePath.From(bytes.IndexOf((byte)0) is var nul and >= 0 ? bytes[..nul] : bytes);
        if (!path.Bytes.SequenceEqual(bytes.IndexOf((byte)0) is var n and >= 0 ? bytes[..n] : bytes))
            throw new InvalidOperationException("a path lost its bytes");
    }

    [UnmanagedCallersOnly]
    private static void Release(SmiTensor* t) => s_released++;

    /// <summary>
    /// Up to 4 tensors read from the input: per tensor one byte of flags (bit 0: named; bit 1:
    /// has release), dtype, ndim (0..10), then ndim little-endian int64 dims, then a 2-byte data
    /// length; the data is whatever input follows, and byte_size is at most what is really there.
    /// </summary>
    private sealed class Tensors : IDisposable
    {
        private readonly List<nint> _blocks = new();
        public SmiTensor* Pointer { get; }
        public int Count { get; }

        public Tensors(ReadOnlySpan<byte> b, bool lendOutputs)
        {
            Pointer = (SmiTensor*)NativeMemory.AllocZeroed(4, (nuint)sizeof(SmiTensor));
            int at = 0;
            while (Count < 4 && at + 3 <= b.Length)
            {
                SmiTensor* t = &Pointer[Count++];
                byte flags = b[at], dtype = b[at + 1], ndim = b[at + 2];
                at += 3;
                t->Name = (flags & 1) != 0 ? (byte*)Keep("t\0"u8) : null;
                t->Dtype = (SmiDtype)dtype;
                t->NDim = ndim % 11u;
                for (int d = 0; d < Math.Min((int)t->NDim, SmiVersion.MaxDims) && at + 8 <= b.Length; d++, at += 8)
                    t->Shape[d] = BitConverter.ToInt64(b.Slice(at, 8));
                int length = at + 2 <= b.Length ? BitConverter.ToUInt16(b.Slice(at, 2)) : 0;
                at = Math.Min(at + 2, b.Length);
                length = Math.Min(length, b.Length - at);
                t->Data = length > 0 || (flags & 4) != 0 ? Keep(b.Slice(at, length)) : null;
                t->ByteSize = (nuint)length;
                at += length;
                if (lendOutputs && (flags & 2) != 0) t->Release = &Release;
            }
        }

        private void* Keep(ReadOnlySpan<byte> bytes)
        {
            var p = NativeMemory.Alloc((nuint)Math.Max(1, bytes.Length));
            bytes.CopyTo(new Span<byte>(p, bytes.Length));
            _blocks.Add((nint)p);
            return p;
        }

        public void Dispose()
        {
            foreach (var p in _blocks) NativeMemory.Free((void*)p);
            NativeMemory.Free(Pointer);
        }
    }
}
