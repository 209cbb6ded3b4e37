using System.Diagnostics;
using Mlos.Smi.Abi;

namespace Mlos.Core.Batching;

/// <summary>
/// One typed request waiting in a <see cref="DynamicBatcher"/>. A blocking caller's thread waits
/// on <see cref="Done"/> and reuses one request per thread; an asynchronous caller (the server)
/// awaits the request itself, as a pooled <see cref="IValueTaskSource{TResult}"/>, and no thread
/// blocks. Either way queueing allocates nothing.
/// </summary>
internal sealed unsafe class BatchRequest : System.Threading.Tasks.Sources.IValueTaskSource<InferTiming>
{
    [ThreadStatic] private static BatchRequest? t_mine;
    private static readonly System.Collections.Concurrent.ConcurrentQueue<BatchRequest> s_pool = new();

    public static BatchRequest Mine => t_mine ??= new BatchRequest();

    /// <summary>A request for an asynchronous caller, back in the pool once its result is read.</summary>
    public static BatchRequest RentAsync()
    {
        var r = s_pool.TryDequeue(out var pooled) ? pooled : new BatchRequest();
        r.IsAsync = true;
        r._source.Reset();
        return r;
    }

    // Continuations run on the thread pool, never on the leader thread that completes them.
    private System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore<InferTiming> _source = new() { RunContinuationsAsynchronously = true };
    public bool IsAsync { get; private set; }
    public short Version => _source.Version;

    /// <summary>Wakes the caller: the blocked thread, or the awaiting continuation.</summary>
    public void Complete()
    {
        if (!IsAsync) { Done.Set(); return; }
        if (Failure is { } failure) _source.SetException(failure);
        else _source.SetResult(Timing);
    }

    public InferTiming GetResult(short token)
    {
        try { return _source.GetResult(token); }
        finally { Recycle(); }
    }

    /// <summary>Back to the pool: after its result was read, or when it was never queued.</summary>
    public void Recycle()
    {
        IsAsync = false;
        Failure = null;
        Inputs = null;
        Outputs = null;
        NumOutputs = null;
        Selection = default;
        s_pool.Enqueue(this);
    }

    public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token,
        System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags) => _source.OnCompleted(continuation, state, token, flags);

    public SmiTensor* Inputs;
    public int NumInputs;
    public SmiTensor* Outputs;
    public nuint* NumOutputs;
    /// <summary>Rows along dim 0, the same in every input.</summary>
    public long Rows;
    /// <summary>The outputs the request wants (none named: all).</summary>
    public Models.OutputSelection Selection;
    /// <summary>CLOCK_MONOTONIC ns by which the request must be answered; 0 for none.</summary>
    public ulong Deadline;
    public long Enqueued;
    public long Started;
    public int BatchSize;
    /// <summary>The times of the execution that ran this request (its statistics), set when it succeeds.</summary>
    public Models.ModelStatistics.ExecutionTimes Times;
    public MlosException? Failure;
    /// <summary>Set once the request has its outputs or its failure: later errors of the batch leave it alone.</summary>
    public bool Answered;
    /// <summary>Set, with <see cref="Done"/>, when the lead is handed to this blocked caller: it runs the next batch itself.</summary>
    public volatile bool Lead;
    public readonly ManualResetEventSlim Done = new(false, spinCount: 1);

    public InferTiming Timing => new((long)Stopwatch.GetElapsedTime(Enqueued, Started).TotalMicroseconds, BatchSize);

    /// <summary>
    /// Takes the request's inputs if they can be merged with others along dim 0: host memory,
    /// fixed-size elements, rank ≥ 1, one row count, byte sizes matching their shapes, and in all
    /// no more than the options' <see cref="BatchingOptions.MaxMergeBytes"/>. Anything else runs
    /// on its own and gets the plugin's own verdict.
    /// </summary>
    public bool TryBind(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, BatchingOptions options, ulong deadline, in Models.OutputSelection selection)
    {
        if (inputs == null || numInputs == 0 || numInputs > 64 || outputs == null || numOutputs == null) return false;
        long rows = -1;
        ulong bytes = 0, byteLimit = options.MaxMergeBytes == 0 ? ulong.MaxValue : (ulong)options.MaxMergeBytes;
        for (int i = 0; i < (int)numInputs; i++)
        {
            ref readonly var t = ref inputs[i];
            int element = SmiDtypes.ElementSize(t.Dtype);
            if (t.NDim == 0 || t.NDim > SmiVersion.MaxDims || element <= 0 || t.MemoryType == SmiMemoryType.Gpu || t.Data == null) return false;
            if (!SmiTensorRules.TryElementCount(t.Dims, out long count) || (ulong)(count * element) != t.ByteSize) return false;
            if (t.ByteSize > byteLimit - bytes) return false; // bytes ≤ byteLimit: cannot wrap
            bytes += t.ByteSize;
            if (rows < 0) rows = t.Shape[0];
            else if (rows != t.Shape[0]) return false;
        }
        if (rows <= 0 || rows > options.MaxBatchSize) return false;
        Inputs = inputs;
        NumInputs = (int)numInputs;
        Outputs = outputs;
        NumOutputs = numOutputs;
        Rows = rows;
        Deadline = deadline;
        Selection = selection;
        Failure = null;
        Answered = false;
        BatchSize = 1;
        Times = default;
        return true;
    }

    /// <summary>Same input names, dtypes and dims after the first, and the same requested outputs: only such requests merge.</summary>
    public bool SameSignature(BatchRequest other)
    {
        if (other.NumInputs != NumInputs || !Selection.SameAs(other.Selection)) return false;
        for (int i = 0; i < NumInputs; i++)
        {
            ref readonly var a = ref Inputs[i];
            ref readonly var b = ref other.Inputs[i];
            if (a.Dtype != b.Dtype || a.NDim != b.NDim || !a.Dims[1..].SequenceEqual(b.Dims[1..])) return false;
            if (a.Name != b.Name && !SameName(a.Name, b.Name)) return false;
        }
        return true;
    }

    private static bool SameName(byte* a, byte* b) =>
        a != null && b != null &&
        System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(a)
            .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(b));
}
