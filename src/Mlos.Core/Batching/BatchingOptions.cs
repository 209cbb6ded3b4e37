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
/// </summary>
public sealed record BatchingOptions(int MaxBatchSize, int MaxQueueDelayMicroseconds)
{
    public const int Limit = 4096;

    /// <summary>
    /// Rows a default batch may hold. Batching by default never waits, so a larger cap costs no
    /// latency: it only lets a batch take everything that queued while the previous one ran.
    /// </summary>
    public const int DefaultMaxBatchSize = 64;

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
            default: throw new MlosException(SmiStatus.InvalidParam, $"{what} must be true, false or an object {{\"max_batch_size\", \"max_queue_delay_us\"}}, not {e.GetRawText()}");
        }
        int? max = null, delay = null;
        foreach (var field in JsonConfig.Object(e, what).EnumerateObject())
        {
            switch (field.Name)
            {
                case "max_batch_size": max = Int(field, 1, Limit); break;
                case "max_queue_delay_us": delay = Int(field, 0, 10_000_000); break;
                default: throw JsonConfig.UnknownKey(what, field.Name, "max_batch_size, max_queue_delay_us");
            }
        }
        return new BatchingOptions(
            max ?? throw new MlosException(SmiStatus.InvalidParam, $"{what} needs \"max_batch_size\""),
            delay ?? 0);

        static int Int(JsonProperty p, int min, int maxValue) =>
            p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var v) && v >= min && v <= maxValue ? v
            : throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' must be an integer from {min} to {maxValue}, not {p.Value.GetRawText()}");
    }
}

/// <summary>What a typed inference reports besides its outputs.</summary>
/// <param name="QueueMicroseconds">Time spent waiting for a batch to form and run (0 unbatched).</param>
/// <param name="BatchSize">Requests in the batch this one ran in (1 when it ran alone).</param>
public readonly record struct InferTiming(long QueueMicroseconds, int BatchSize);
