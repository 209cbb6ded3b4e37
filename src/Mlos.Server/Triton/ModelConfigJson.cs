using System.Text.Json;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Triton;

/// <summary>
/// A <c>ModelConfig</c> as the JSON of Triton's REST config route: model_config.proto's field
/// names, enums by name, integers as numbers (Triton turns protobuf's quoted int64s back into
/// numbers, and its clients expect them so).
/// </summary>
internal static class ModelConfigJson
{
    public static void Write(Utf8JsonWriter w, ModelConfig c)
    {
        w.WriteString("name", c.Name);
        w.WriteString("platform", c.Platform);
        w.WriteString("backend", c.Backend);
        w.WriteStartObject("version_policy");
        switch (c.VersionPolicy?.PolicyChoiceCase)
        {
            case ModelVersionPolicy.PolicyChoiceOneofCase.All: w.WriteStartObject("all"); w.WriteEndObject(); break;
            case ModelVersionPolicy.PolicyChoiceOneofCase.Specific: Numbers(w, "versions", c.VersionPolicy.Specific.Versions, inObject: "specific"); break;
            default:
                w.WriteStartObject("latest");
                w.WriteNumber("num_versions", c.VersionPolicy?.Latest?.NumVersions ?? 1);
                w.WriteEndObject();
                break;
        }
        w.WriteEndObject();
        w.WriteNumber("max_batch_size", c.MaxBatchSize);
        w.WriteStartArray("input");
        foreach (var t in c.Input) Tensor(w, t.Name, t.DataType, t.Dims, t.Reshape, t.Optional);
        w.WriteEndArray();
        w.WriteStartArray("output");
        foreach (var t in c.Output) Tensor(w, t.Name, t.DataType, t.Dims, t.Reshape, optional: null);
        w.WriteEndArray();
        w.WriteStartArray("instance_group");
        foreach (var g in c.InstanceGroup)
        {
            w.WriteStartObject();
            w.WriteString("name", g.Name);
            w.WriteString("kind", ModelInstanceGroup.Descriptor.EnumTypes[0].FindValueByNumber((int)g.Kind)?.Name ?? "KIND_AUTO");
            w.WriteNumber("count", g.Count);
            Numbers(w, "gpus", g.Gpus.Select(x => (long)x));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("default_model_filename", c.DefaultModelFilename);
        if (c.DynamicBatching is { } b)
        {
            w.WriteStartObject("dynamic_batching");
            Numbers(w, "preferred_batch_size", b.PreferredBatchSize.Select(x => (long)x));
            w.WriteNumber("max_queue_delay_microseconds", b.MaxQueueDelayMicroseconds);
            w.WriteBoolean("preserve_ordering", b.PreserveOrdering);
            w.WriteEndObject();
        }
        w.WriteStartObject("parameters");
        foreach (var (key, p) in c.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WriteStartObject(key);
            w.WriteString("string_value", p.StringValue);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartArray("model_warmup");
        foreach (var s in c.ModelWarmup)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteNumber("batch_size", s.BatchSize);
            w.WriteStartObject("inputs");
            foreach (var (key, x) in s.Inputs.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(key);
                w.WriteString("data_type", Name(x.DataType));
                Numbers(w, "dims", x.Dims);
                switch (x.InputDataTypeCase)
                {
                    case ModelWarmup.Types.Input.InputDataTypeOneofCase.ZeroData: w.WriteBoolean("zero_data", true); break;
                    case ModelWarmup.Types.Input.InputDataTypeOneofCase.RandomData: w.WriteBoolean("random_data", true); break;
                    default: w.WriteString("input_data_file", x.InputDataFile); break;
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteNumber("count", s.Count);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>An input (with <c>optional</c>) or output entry.</summary>
    private static void Tensor(Utf8JsonWriter w, string name, DataType dtype, IEnumerable<long> dims, ModelTensorReshape? reshape, bool? optional)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("data_type", Name(dtype));
        Numbers(w, "dims", dims);
        if (reshape is not null) Numbers(w, "shape", reshape.Shape, inObject: "reshape");
        if (optional is { } o) w.WriteBoolean("optional", o);
        w.WriteEndObject();
    }

    private static string Name(DataType t) => ModelConfigReflection.Descriptor.EnumTypes[0].FindValueByNumber((int)t)?.Name ?? "TYPE_INVALID";

    private static void Numbers(Utf8JsonWriter w, string name, IEnumerable<long> values, string? inObject = null)
    {
        if (inObject is not null) w.WriteStartObject(inObject);
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
        if (inObject is not null) w.WriteEndObject();
    }
}
