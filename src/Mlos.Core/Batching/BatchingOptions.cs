using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Core.Batching;

/// <summary>
/// Dynamic batching of one model, from its options:
/// <c>"dynamic_batching": {"max_batch_size": 32, "max_queue_delay_us": 500}</c>. Requests wait up
/// to <see cref="MaxQueueDelayMicroseconds"/> for others to join them, and a batch runs as soon
/// as it holds <see cref="MaxBatchSize"/> rows. A delay of 0 merges only what is already queued
/// while the previous batch ran (the batch size then follows the load).
///
/// A model registered without the key gets <see cref="Default"/>: batching is turned on at load
/// only where it is safe (Triton's rule, see <see cref="Models.Model.StartBatching"/>) and
/// otherwise stays off without complaint; it never waits. <c>"dynamic_batching": false</c> turns
/// it off, <c>true</c> asks for the defaults and fails the load where the model cannot batch.
///
/// Requests whose inputs hold more than <see cref="MaxMergeBytes"/> never queue: they run at once,
/// alongside the batches, as if batching were off for them.
/// </summary>
public sealed record BatchingOptions(int MaxBatchSize, int MaxQueueDelayMicroseconds)
{
    public const int Limit = 4096;

    /// <summary>
    /// Rows a default batch may hold. Batching by default never waits, so a larger cap costs no
    /// latency: it only lets a batch take everything that queued while the previous one ran.
    /// </summary>
    public const int DefaultMaxBatchSize = 64;

    /// <summary>
    /// Input bytes above which a request runs on its own (<c>"max_merge_bytes"</c>, 0 = no limit).
    /// Merging saves a plugin call per request (tens of µs) and buys a larger GEMM; it costs a
    /// copy of every input into the batch (about 0.1 ms per MiB even on warm memory) and a turn in
    /// the model's one queue. At a megabyte the copy already costs more than the call it saves,
    /// and such a request fills a GEMM by itself, so it is better run at once: on 2 cores, 4 MiB
    /// requests from 8 clients through shared memory reach 3.3× REST binary's throughput
    /// unmerged, 2.0-2.3× merged.
    /// </summary>
    public long MaxMergeBytes { get; init; } = DefaultMaxMergeBytes;

    public const long DefaultMaxMergeBytes = 1 << 20;

    /// <summary>
    /// Row counts at which a forming batch runs at once instead of waiting out the queue delay
    /// (<c>"preferred_batch_sizes"</c>, Triton's <c>preferred_batch_size</c>); none by default.
    /// </summary>
    public int[] PreferredBatchSizes { get; init; } = [];

    /// <summary>On by default: started only where the model can batch, silently off elsewhere.</summary>
    public bool Automatic { get; init; }

    /// <summary>What a model registered without <c>dynamic_batching</c> gets.</summary>
    public static BatchingOptions Default { get; } = new(DefaultMaxBatchSize, 0) { Automatic = true };

    /// <summary>The value of <c>dynamic_batching</c>: false/null = off, true = the defaults (required), or an object.</summary>
    internal static BatchingOptions? Parse(JsonElement e)
    {
        const string what = "model options: dynamic_batching";
        switch (e.ValueKind)
        {
            case JsonValueKind.False or JsonValueKind.Null: return null;
            case JsonValueKind.True: return Default with { Automatic = false };
            case JsonValueKind.Object: break;
            default: throw new MlosException(SmiStatus.InvalidParam, $"{what} must be true, false or an object {{\"max_batch_size\", \"max_queue_delay_us\", \"max_merge_bytes\"}}, not {e.GetRawText()}");
        }
        int? max = null, delay = null;
        long mergeBytes = DefaultMaxMergeBytes;
        int[] preferred = [];
        foreach (var field in JsonConfig.Object(e, what).EnumerateObject())
        {
            switch (field.Name)
            {
                case "max_batch_size": max = Int(field, 1, Limit); break;
                case "max_queue_delay_us": delay = Int(field, 0, 10_000_000); break;
                case "max_merge_bytes": mergeBytes = Bytes(field); break;
                case "preferred_batch_sizes": preferred = Sizes(field); break;
                default: throw JsonConfig.UnknownKey(what, field.Name, "max_batch_size, max_queue_delay_us, max_merge_bytes, preferred_batch_sizes");
            }
        }
        var options = new BatchingOptions(
            max ?? throw new MlosException(SmiStatus.InvalidParam, $"{what} needs \"max_batch_size\""),
            delay ?? 0) { MaxMergeBytes = mergeBytes, PreferredBatchSizes = preferred };
        if (preferred.FirstOrDefault(p => p > options.MaxBatchSize) is > 0 and var over)
            throw new MlosException(SmiStatus.InvalidParam, $"{what}: preferred batch size {over} is larger than max_batch_size {options.MaxBatchSize}");
        return options;

        static int Int(JsonProperty p, int min, int maxValue) =>
            p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var v) && v >= min && v <= maxValue ? v
            : throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' must be an integer from {min} to {maxValue}, not {p.Value.GetRawText()}");

        static int[] Sizes(JsonProperty p) =>
            p.Value.ValueKind == JsonValueKind.Array && p.Value.GetArrayLength() <= 64
                && p.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= 1 && n <= Limit)
                ? [.. p.Value.EnumerateArray().Select(v => v.GetInt32()).Distinct().Order()]
                : throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'preferred_batch_sizes' must be an array of at most 64 integers from 1 to {Limit}, not {p.Value.GetRawText()}");

        static long Bytes(JsonProperty p) =>
            p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out var v) && v >= 0 ? v
            : throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'max_merge_bytes' must be a whole number of bytes (0 = no limit), not {p.Value.GetRawText()}");
    }
}

/// <summary>What a typed inference reports besides its outputs.</summary>
/// <param name="QueueMicroseconds">Time spent waiting for a batch to form and run (0 unbatched).</param>
/// <param name="BatchSize">Requests in the batch this one ran in (1 when it ran alone).</param>
public readonly record struct InferTiming(long QueueMicroseconds, int BatchSize);
