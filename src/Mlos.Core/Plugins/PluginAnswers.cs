using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Plugins;

/// <summary>
/// What a plugin hands back, checked against what the core passed before anyone relies on it:
/// counts and sizes within the capacities given, output tensors that say what they are, and
/// plugin memory that can be given back. A plugin that breaks the SMI contract fails its call
/// with RUNTIME ("broke the SMI contract: …"), and what it allocated is released, never
/// passed on: a count of 100000 for a 64-slot array must not become 100000 reads.
/// </summary>
internal static unsafe class PluginAnswers
{
    /// <summary>More inputs or outputs than any model has: a count beyond it is a lie, not a model.</summary>
    public const int MaxTensors = 1024;

    public static MlosException Broke(string pluginId, string entry, string what) =>
        new(SmiStatus.Runtime, $"plugin '{pluginId}' {entry} broke the SMI contract: {what}");

    /// <summary>What one output slot held when the core called infer: the caller's buffer, or none.</summary>
    public struct Lent
    {
        public void* Data;
        public nuint ByteSize;
        public nint Release;
        public void* ReleaseContext;
    }

    /// <summary>
    /// Notes what each slot holds before the call. A slot without a buffer gets its release
    /// cleared: whatever is there afterwards was set by the plugin, not left by the caller.
    /// </summary>
    public static void Record(SmiTensor* outputs, Span<Lent> lent)
    {
        for (int i = 0; i < lent.Length; i++)
        {
            SmiTensor* t = &outputs[i];
            if (t->Data == null)
            {
                t->Release = null;
                t->ReleaseContext = null;
            }
            lent[i] = new Lent { Data = t->Data, ByteSize = t->ByteSize, Release = (nint)t->Release, ReleaseContext = t->ReleaseContext };
        }
    }

    /// <summary>
    /// After a successful typed infer: <paramref name="count"/> outputs within the capacity, each
    /// a well-formed tensor in the place the ownership rule says. On a breach, every output the
    /// plugin allocated is released and its slot cleared, and the exception is returned.
    /// </summary>
    public static MlosException? CheckOutputs(string pluginId, SmiTensor* outputs, nuint count, ReadOnlySpan<Lent> lent)
    {
        string? problem = count > (nuint)lent.Length
            ? $"it reported {count} outputs for an array of {lent.Length}"
            : null;
        int n = (int)Math.Min(count, (nuint)lent.Length);
        for (int i = 0; problem is null && i < n; i++)
            problem = OutputProblem(in outputs[i], in lent[i]) is { } p ? $"output {i} {p}" : null;
        if (problem is null) return null;
        ReleaseAllocated(outputs, lent);
        return Broke(pluginId, "infer", problem);
    }

    /// <summary>Whether any slot holds a caller's buffer (which a selection cannot be combined with).</summary>
    public static bool HasCallerBuffers(ReadOnlySpan<Lent> lent)
    {
        foreach (ref readonly var l in lent)
            if (l.Data != null) return true;
        return false;
    }

    /// <summary>
    /// A typed infer with requested outputs, all empty slots: the requested outputs stay, first,
    /// and their count is returned. A plugin that took the selection (SMI 1.3, <paramref name="strict"/>)
    /// must have written exactly those, each once: anything else is its breach. One that did not
    /// wrote them all: the others are released here, before any caller copies them, and a
    /// requested name it did not answer with is the caller's mistake. On any failure every output
    /// is released.
    /// </summary>
    public static nuint KeepSelected(string pluginId, SmiTensor* outputs, nuint count, in Models.OutputSelection selection, bool strict)
    {
        int n = (int)count, kept = 0;
        string? answered = null;
        for (int i = 0; i < n; i++)
        {
            var name = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(outputs[i].Name);
            bool wanted = selection.Contains(name);
            for (int k = 0; k < kept && wanted; k++)
                if (System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(outputs[k].Name).SequenceEqual(name))
                {
                    var twice = Utf8.Read(outputs[i].Name);
                    ReleaseAll(outputs, n);
                    throw Broke(pluginId, "infer", $"it wrote output '{twice}' twice");
                }
            if (!wanted)
            {
                if (strict)
                {
                    answered = Utf8.Read(outputs[i].Name);
                    ReleaseAll(outputs, n);
                    throw Broke(pluginId, "infer_selected", $"it wrote output '{answered}', which was not requested");
                }
                Release(&outputs[i]);
                continue;
            }
            if (i != kept) (outputs[kept], outputs[i]) = (outputs[i], outputs[kept]);
            kept++;
        }
        if (kept == selection.Count) return (nuint)kept;
        // A requested output is missing: say which, and what the model did answer with.
        var names = new List<string>();
        for (int k = 0; k < kept; k++) names.Add(Utf8.Read(outputs[k].Name) ?? "");
        string missing = "";
        for (int s = 0; s < selection.Count; s++)
            if (!names.Contains(Utf8.Read(selection.Names[s]) ?? "")) { missing = Utf8.Read(selection.Names[s]) ?? ""; break; }
        ReleaseAll(outputs, kept);
        if (strict) throw Broke(pluginId, "infer_selected", $"it did not write requested output '{missing}'");
        throw new MlosException(SmiStatus.InvalidParam, $"the model has no output '{missing}'");
    }

    private static void Release(SmiTensor* t)
    {
        if (t->Release != null) t->Release(t);
        t->Release = null;
        t->ReleaseContext = null;
        t->Data = null;
        t->ByteSize = 0;
    }

    /// <summary>Releases the outputs a plugin allocated (release set) after a check failed; caller buffers are left as they are.</summary>
    public static void ReleaseAllocated(SmiTensor* outputs, int n)
    {
        for (int i = 0; i < n; i++)
            if (outputs[i].Release != null) Release(&outputs[i]);
    }

    private static void ReleaseAll(SmiTensor* outputs, int n)
    {
        for (int i = 0; i < n; i++) Release(&outputs[i]);
    }

    /// <summary>After a failed typed infer: the rule says nothing is left allocated; whatever is, is released.</summary>
    public static void ReleaseLeftovers(SmiTensor* outputs, ReadOnlySpan<Lent> lent) => ReleaseAllocated(outputs, lent);

    private static string? OutputProblem(in SmiTensor t, in Lent lent)
    {
        if (t.Name == null) return "has a NULL name";
        if (t.NDim > SmiVersion.MaxDims) return $"has {t.NDim} dimensions; at most {SmiVersion.MaxDims} exist";
        if (!SmiTensorRules.TryElementCount(t.Dims, out long elements))
            return $"has shape [{string.Join(",", t.Dims.ToArray())}], negative or too large";
        long need;
        if (t.Dtype == SmiDtype.Bytes) need = elements > long.MaxValue / 4 ? long.MaxValue : elements * 4;
        else
        {
            int size = SmiDtypes.ElementSize(t.Dtype);
            if (size <= 0) return $"has dtype {(int)t.Dtype}, which is not an SMI dtype";
            need = elements > long.MaxValue / size ? long.MaxValue : elements * size;
        }
        if ((ulong)t.ByteSize < (ulong)need) return $"has {t.ByteSize} bytes; its shape needs {need}";
        if (t.ByteSize > 0 && t.Data == null) return $"has {t.ByteSize} bytes but no data";
        if (lent.Data != null)
        {
            if (t.Data != lent.Data) return "was a caller buffer, but the plugin replaced its data pointer";
            if (t.ByteSize > lent.ByteSize) return $"reports {t.ByteSize} bytes written into a buffer of {lent.ByteSize}";
            if ((nint)t.Release != lent.Release && t.Release != null) return "was a caller buffer, but the plugin set release";
        }
        else if (t.Data != null && t.Release == null) return "is plugin-allocated data with a NULL release";
        return null;
    }

    /// <summary>
    /// Releases the slots the plugin filled with its own memory (no caller buffer, release set by
    /// it), and puts back what it changed in the caller's buffer slots: a caller that cleans up
    /// after a failure must not free plugin memory as its own, or its own with the plugin's release.
    /// </summary>
    private static void ReleaseAllocated(SmiTensor* outputs, ReadOnlySpan<Lent> lent)
    {
        for (int i = 0; i < lent.Length; i++)
        {
            SmiTensor* t = &outputs[i];
            if (lent[i].Data != null)
            {
                t->Data = lent[i].Data;
                t->Release = (delegate* unmanaged<SmiTensor*, void>)lent[i].Release;
                t->ReleaseContext = lent[i].ReleaseContext;
                continue;
            }
            if (t->Release == null || (nint)t->Release == lent[i].Release) continue;
            var release = t->Release;
            release(t);
            t->Release = null;
            t->ReleaseContext = null;
            t->Data = null;
            t->ByteSize = 0;
        }
    }

    /// <summary>The specs <c>get_model_io</c> reported: names set, known dtypes, rank and dims in range.</summary>
    public static string? SpecProblem(in SmiTensorSpec s)
    {
        if (s.Name == null) return "has a NULL name";
        if (s.NDim > SmiVersion.MaxDims) return $"has {s.NDim} dimensions; at most {SmiVersion.MaxDims} exist";
        if (s.Dtype != SmiDtype.Bytes && SmiDtypes.ElementSize(s.Dtype) <= 0) return $"has dtype {(int)s.Dtype}, which is not an SMI dtype";
        for (int d = 0; d < (int)s.NDim; d++)
            if (s.Shape[d] < -1) return $"has dimension {s.Shape[d]}; dims are >= 0, or -1 for any";
        return null;
    }

    /// <summary>A status as the core passes it on: one of smi_status_t, or RUNTIME for anything else.</summary>
    public static SmiStatus Known(SmiStatus status) =>
        status is <= SmiStatus.Success and >= SmiStatus.Timeout ? status : SmiStatus.Runtime;
}
