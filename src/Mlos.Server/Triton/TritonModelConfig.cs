using Mlos.Core.Batching;
using Mlos.Smi.Abi;

namespace Mlos.Server.Triton;

/// <summary>
/// The part of Triton's <c>ModelConfig</c> (model_config.proto, written as <c>config.pbtxt</c>) that
/// we honour, read strictly: every field here is checked for kind and range, with the file, line
/// and column in the message. Every other field is kept in <see cref="Ignored"/> (its path), so
/// that the server can say once which parts of a config it did not act on; the scheduling kinds
/// we cannot honour without changing what the model computes (sequence batching, ensembles) are
/// refused instead.
/// </summary>
internal sealed record TritonModelConfig
{
    public string? Name { get; init; }
    public string? Platform { get; init; }
    public string? Backend { get; init; }
    /// <summary>Null when the config leaves it out (auto-complete fills it from the model).</summary>
    public int? MaxBatchSize { get; init; }
    public IReadOnlyList<TensorConfig> Inputs { get; init; } = [];
    public IReadOnlyList<TensorConfig> Outputs { get; init; } = [];
    public DynamicBatchingConfig? DynamicBatching { get; init; }
    public IReadOnlyList<InstanceGroupConfig> InstanceGroups { get; init; } = [];
    public VersionPolicy Versions { get; init; } = new VersionPolicy.Latest(1);
    public string? DefaultModelFilename { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; init; } = [];
    /// <summary><c>optimization.graph.level</c> (the ONNX Runtime backend's graph optimisation level), or null.</summary>
    public int? GraphLevel { get; init; }
    public IReadOnlyList<WarmupConfig> Warmups { get; init; } = [];
    /// <summary>Paths of the fields read but not acted on (<c>optimization</c>, <c>input[0].format</c>).</summary>
    public IReadOnlyList<string> Ignored { get; init; } = [];

    private static readonly Dictionary<string, SmiDtype> s_dataTypes = new(StringComparer.Ordinal)
    {
        ["TYPE_BOOL"] = SmiDtype.Bool, ["TYPE_UINT8"] = SmiDtype.UInt8, ["TYPE_UINT16"] = SmiDtype.UInt16,
        ["TYPE_UINT32"] = SmiDtype.UInt32, ["TYPE_UINT64"] = SmiDtype.UInt64, ["TYPE_INT8"] = SmiDtype.Int8,
        ["TYPE_INT16"] = SmiDtype.Int16, ["TYPE_INT32"] = SmiDtype.Int32, ["TYPE_INT64"] = SmiDtype.Int64,
        ["TYPE_FP16"] = SmiDtype.Fp16, ["TYPE_FP32"] = SmiDtype.Fp32, ["TYPE_FP64"] = SmiDtype.Fp64,
        ["TYPE_STRING"] = SmiDtype.Bytes, ["TYPE_BF16"] = SmiDtype.Bf16,
    };

    /// <summary>model_config.proto's numbers for the same names (a config may write the number).</summary>
    private static readonly Dictionary<long, string> s_dataTypeNumbers = new()
    {
        [1] = "TYPE_BOOL", [2] = "TYPE_UINT8", [3] = "TYPE_UINT16", [4] = "TYPE_UINT32", [5] = "TYPE_UINT64",
        [6] = "TYPE_INT8", [7] = "TYPE_INT16", [8] = "TYPE_INT32", [9] = "TYPE_INT64", [10] = "TYPE_FP16",
        [11] = "TYPE_FP32", [12] = "TYPE_FP64", [13] = "TYPE_STRING", [14] = "TYPE_BF16",
    };

    private static readonly Dictionary<string, InstanceKind> s_kinds = new(StringComparer.Ordinal)
    {
        ["KIND_AUTO"] = InstanceKind.Auto, ["KIND_GPU"] = InstanceKind.Gpu, ["KIND_CPU"] = InstanceKind.Cpu, ["KIND_MODEL"] = InstanceKind.Model,
    };

    private static readonly Dictionary<long, string> s_kindNumbers = new() { [0] = "KIND_AUTO", [1] = "KIND_GPU", [2] = "KIND_CPU", [3] = "KIND_MODEL" };

    /// <summary>Triton's name for a dtype (<c>TYPE_FP32</c>; BYTES is <c>TYPE_STRING</c>).</summary>
    public static string DataTypeName(SmiDtype t) => s_dataTypes.FirstOrDefault(p => p.Value == t).Key ?? "TYPE_INVALID";

    /// <summary>Reads <c>config.pbtxt</c> text; <paramref name="source"/> names the file in errors.</summary>
    public static TritonModelConfig Parse(byte[] text, string source) => Read(new ConfigReader(TextFormat.Parse(text, source), source));

    public static TritonModelConfig Parse(string text, string source) => Parse(System.Text.Encoding.UTF8.GetBytes(text), source);

    private static TritonModelConfig Read(ConfigReader r)
    {
        var ignored = new List<string>();
        foreach (var refused in new[] { "sequence_batching", "ensemble_scheduling" })
            if (r.One(refused) is { } at)
                throw r.Error(at, $"'{refused}' is not supported: a model that needs it cannot be served as if it were a plain model");
        var maxBatch = (int?)r.Integer("max_batch_size", 0, BatchingOptions.Limit);
        int batchDims = maxBatch > 0 ? 1 : 0;
        var config = new TritonModelConfig
        {
            Name = r.String("name"),
            Platform = r.String("platform"),
            Backend = r.String("backend"),
            MaxBatchSize = maxBatch,
            Inputs = r.Messages("input").Select(m => ReadTensor(m, isInput: true, batchDims, ignored)).ToList(),
            Outputs = r.Messages("output").Select(m => ReadTensor(m, isInput: false, batchDims, ignored)).ToList(),
            DynamicBatching = r.Message("dynamic_batching") is { } b ? ReadBatching(b, maxBatch, ignored) : null,
            InstanceGroups = r.Messages("instance_group").Select(m => ReadInstanceGroup(m, ignored)).ToList(),
            Versions = r.Message("version_policy") is { } v ? ReadPolicy(v, r) : new VersionPolicy.Latest(1),
            DefaultModelFilename = r.String("default_model_filename"),
            Parameters = r.Map("parameters").Select(p =>
            {
                var value = p.Entry.Message("value");
                var text = value?.String("string_value") ?? "";
                if (value is not null) ignored.AddRange(value.Unread);
                ignored.AddRange(p.Entry.Unread);
                return KeyValuePair.Create(p.Key, text);
            }).ToList(),
            Warmups = r.Messages("model_warmup").Select(m => ReadWarmup(m, ignored)).ToList(),
        };
        if (r.Message("optimization") is { } optimization)
        {
            if (optimization.Message("graph") is { } graph)
            {
                config = config with { GraphLevel = (int?)graph.Integer("level", -1, 2) };
                ignored.AddRange(graph.Unread);
            }
            ignored.AddRange(optimization.Unread);
        }
        if (config.Name is { Length: 0 }) throw r.Fail($"'name' must not be empty");
        Unique(config.Inputs, "input", r);
        Unique(config.Outputs, "output", r);
        if (config.DynamicBatching is not null && maxBatch == 0)
            throw r.Fail($"'dynamic_batching' needs 'max_batch_size' > 0: a model with max_batch_size 0 cannot batch");
        ignored.InsertRange(0, r.Unread);
        return config with { Ignored = ignored };
    }

    private static void Unique(IReadOnlyList<TensorConfig> tensors, string kind, ConfigReader r)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!seen.Add(t.Name)) throw r.Fail($"two {kind}s are named '{t.Name}'");
    }

    private static TensorConfig ReadTensor(ConfigReader m, bool isInput, int batchDims, List<string> ignored)
    {
        var name = m.String("name");
        if (string.IsNullOrEmpty(name)) throw m.Fail($"every '{m.Path}' needs a \"name\"");
        var dtype = m.Enum("data_type", s_dataTypes, s_dataTypeNumbers);
        List<long>? dims = m.Has("dims") ? m.Integers("dims", -1, long.MaxValue) : null;
        if (dims is not null && dims.Count + batchDims > SmiVersion.MaxDims)
            throw m.Fail($"'{m.PathOf("dims")}' has {dims.Count} dims; at most {SmiVersion.MaxDims - batchDims} fit{(batchDims > 0 ? " beside the batch dimension" : "")}");
        long[]? reshape = m.Message("reshape") is { } rs ? rs.Integers("shape", -1, long.MaxValue).ToArray() : null;
        if (reshape is not null)
        {
            if (dims is null) throw m.Fail($"'{m.PathOf("reshape")}' needs '{m.PathOf("dims")}': a reshape maps dims to the model's shape");
            if (reshape.Length + batchDims > SmiVersion.MaxDims)
                throw m.Fail($"'{m.PathOf("reshape")}' has {reshape.Length} dims; at most {SmiVersion.MaxDims - batchDims} fit{(batchDims > 0 ? " beside the batch dimension" : "")}");
        }
        bool optional = isInput && (m.Bool("optional") ?? false);
        ignored.AddRange(m.Unread);
        return new TensorConfig(name, dtype ?? SmiDtype.Invalid, dims?.ToArray(), reshape, optional);
    }

    private static DynamicBatchingConfig ReadBatching(ConfigReader b, int? maxBatch, List<string> ignored)
    {
        var delay = b.Integer("max_queue_delay_microseconds", 0, 10_000_000) ?? 0;
        var preferred = b.Integers("preferred_batch_size", 1, BatchingOptions.Limit).Select(v => (int)v).ToArray();
        foreach (var p in preferred)
            if (maxBatch is > 0 && p > maxBatch)
                throw b.Fail($"'dynamic_batching.preferred_batch_size' {p} is larger than max_batch_size {maxBatch}");
        var ordering = b.Bool("preserve_ordering") ?? false;
        ignored.AddRange(b.Unread);
        return new DynamicBatchingConfig((int)delay, preferred, ordering);
    }

    private static InstanceGroupConfig ReadInstanceGroup(ConfigReader g, List<string> ignored)
    {
        var name = g.String("name");
        var count = (int)(g.Integer("count", 0, 256) ?? 0);
        var kind = g.Enum("kind", s_kinds, s_kindNumbers) ?? InstanceKind.Auto;
        var gpus = g.Integers("gpus", 0, 1024).Select(v => (int)v).ToArray();
        if (kind is InstanceKind.Cpu or InstanceKind.Model && gpus.Length > 0)
            throw g.Fail($"'{g.PathOf("gpus")}' cannot be given for {s_kinds.First(k => k.Value == kind).Key}");
        ignored.AddRange(g.Unread);
        return new InstanceGroupConfig(name, count == 0 ? 1 : count, kind, gpus); // protobuf's 0 is "not set": Triton's default is 1
    }

    private static VersionPolicy ReadPolicy(ConfigReader v, ConfigReader parent)
    {
        var latest = v.Message("latest");
        var all = v.Message("all");
        var specific = v.Message("specific");
        int given = (latest is null ? 0 : 1) + (all is null ? 0 : 1) + (specific is null ? 0 : 1);
        if (given != 1)
            throw parent.Fail($"'version_policy' must hold exactly one of latest, all, specific (it holds {given})");
        VersionPolicy policy = latest is not null ? new VersionPolicy.Latest((int)(latest.Integer("num_versions", 1, 1_000_000) ?? 1))
            : all is not null ? new VersionPolicy.All()
            : new VersionPolicy.Specific(specific!.Integers("versions", 1, long.MaxValue).Distinct().Order().ToArray());
        foreach (var m in new[] { latest, all, specific, v })
            if (m?.Unread.FirstOrDefault() is { } stray)
                throw parent.Fail($"'{stray}' is not a field of the version policy");
        return policy;
    }

    private static WarmupConfig ReadWarmup(ConfigReader w, List<string> ignored)
    {
        var name = w.String("name") ?? "";
        var batch = (int)(w.Integer("batch_size", 0, BatchingOptions.Limit) ?? 0);
        var count = (int)(w.Integer("count", 0, 10_000) ?? 0);
        var inputs = w.Map("inputs").Select(e =>
        {
            var input = e.Entry.Message("value") ?? throw e.Entry.Error(e.At, $"'{e.Entry.PathOf("value")}' is needed");
            var dtype = input.Enum("data_type", s_dataTypes, s_dataTypeNumbers)
                ?? throw e.Entry.Error(e.At, $"'{input.PathOf("data_type")}' is needed");
            var dims = input.Integers("dims", 0, long.MaxValue).ToArray();
            var zero = input.Bool("zero_data");
            var random = input.Bool("random_data");
            var file = input.String("input_data_file");
            int sources = (zero is null ? 0 : 1) + (random is null ? 0 : 1) + (file is null ? 0 : 1);
            if (sources != 1)
                throw e.Entry.Error(e.At, $"'{input.Path}' must give exactly one of zero_data, random_data, input_data_file");
            if (file is not null && (file.Length == 0 || file.Contains('/') || file is "." or ".."))
                throw e.Entry.Error(e.At, $"'{input.PathOf("input_data_file")}' must name a file in the model's warmup folder, not \"{file}\"");
            ignored.AddRange(input.Unread);
            ignored.AddRange(e.Entry.Unread);
            var data = zero is not null ? WarmupData.Zero : random is not null ? WarmupData.Random : WarmupData.File;
            return new WarmupInput(e.Key, dtype, dims, data, file);
        }).ToList();
        ignored.AddRange(w.Unread);
        return new WarmupConfig(name, batch == 0 ? 1 : batch, count == 0 ? 1 : count, inputs);
    }
}

/// <summary>An input or output as the config declares it; <see cref="Dims"/> null when left out, without the batch dimension when max_batch_size > 0.</summary>
internal sealed record TensorConfig(string Name, SmiDtype Dtype, long[]? Dims, long[]? Reshape, bool Optional);

internal sealed record DynamicBatchingConfig(int MaxQueueDelayMicroseconds, int[] PreferredBatchSizes, bool PreserveOrdering);

internal enum InstanceKind { Auto, Gpu, Cpu, Model }

internal sealed record InstanceGroupConfig(string? Name, int Count, InstanceKind Kind, int[] Gpus);

internal enum WarmupData { Zero, Random, File }

internal sealed record WarmupInput(string Name, SmiDtype Dtype, long[] Dims, WarmupData Data, string? File);

/// <summary>One <c>model_warmup</c> sample: its inputs, run <see cref="Count"/> times with <see cref="BatchSize"/> rows.</summary>
internal sealed record WarmupConfig(string Name, int BatchSize, int Count, IReadOnlyList<WarmupInput> Inputs);

/// <summary>Which numbered version folders are served (model_config.proto's ModelVersionPolicy).</summary>
internal abstract record VersionPolicy
{
    /// <summary>The versions to serve out of those on disk, highest first.</summary>
    public abstract long[] Select(IEnumerable<long> available);

    public sealed record Latest(int NumVersions) : VersionPolicy
    {
        public override long[] Select(IEnumerable<long> available) => available.OrderDescending().Take(NumVersions).ToArray();
    }

    public sealed record All : VersionPolicy
    {
        public override long[] Select(IEnumerable<long> available) => available.OrderDescending().ToArray();
    }

    public sealed record Specific(long[] Versions) : VersionPolicy
    {
        public override long[] Select(IEnumerable<long> available) => available.Where(Versions.Contains).OrderDescending().ToArray();
    }
}
