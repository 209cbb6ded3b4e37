using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Smi.Abi;

namespace Mlos.Server.Triton;

/// <summary>
/// One model folder in Triton's layout: an optional <c>config.pbtxt</c> and numbered version
/// folders (<c>1/model.onnx</c>). The version policy picks the versions served; each is
/// registered under the folder's name with its number as version, loaded, and checked against
/// what the config declares. A version that fails takes the versions loaded before it down too:
/// a model loads whole or not at all.
/// </summary>
internal static class TritonModelFolder
{
    public const string ConfigFile = "config.pbtxt";

    /// <summary>A folder is Triton's when it holds config.pbtxt or a numbered version folder.</summary>
    public static bool Holds(string folder) => File.Exists(Path.Combine(folder, ConfigFile)) || Versions(folder).Any();

    /// <summary>Numbered version folders (Triton: digits only, not starting with 0), as numbers.</summary>
    public static IEnumerable<long> Versions(string folder) =>
        Directory.EnumerateDirectories(folder).Select(Path.GetFileName)
            .Where(n => n is { Length: > 0 and <= 18 } && n[0] != '0' && n.All(char.IsAsciiDigit))
            .Select(n => long.Parse(n!));

    /// <summary>The model's config as written (an empty one when the folder has no config.pbtxt).</summary>
    public static TritonModelConfig ReadConfig(string name, string folder)
    {
        var path = Path.Combine(folder, ConfigFile);
        var source = $"{name}/{ConfigFile}";
        if (!File.Exists(path)) return new TritonModelConfig();
        if (new FileInfo(path).Length > TextFormat.MaxBytes)
            throw new TextFormatException($"{source} is larger than the {TextFormat.MaxBytes} bytes a model config may have");
        var config = TritonModelConfig.Parse(File.ReadAllBytes(path), source);
        if (config.Name is { } named && named != name)
            throw new TextFormatException($"{source} names the model '{named}', but its folder is '{name}': they must agree");
        return config;
    }

    /// <summary>
    /// Brings the model to what its folder holds now: every version the policy serves is loaded
    /// and checked out of reach (a version already serving keeps serving meanwhile), then all
    /// take their places at once, and versions no longer served are unregistered. Should any
    /// version fail, none of the new ones is kept and what served before serves on. A loaded
    /// version that <paramref name="unchanged"/> says is as it was stays as it is (poll mode: a
    /// new version folder loads that version only). The models, highest version first.
    /// </summary>
    public static IReadOnlyList<Model> Load(ServerState state, string name, string folder, TritonModelConfig config, Func<long, bool>? unchanged = null)
    {
        var source = $"{name}/{ConfigFile}";
        var onDisk = Versions(folder).ToArray();
        var served = config.Versions.Select(onDisk);
        var current = state.Core.Models.Where(m => m.Id == name).ToList();
        if (served.Length == 0)
        {
            // Nothing left to serve: what served goes too (Triton unloads a model whose versions are gone).
            foreach (var m in current) state.Core.UnregisterModel(m);
            throw new MlosException(SmiStatus.NotFound, onDisk.Length == 0
                ? $"repository model '{name}' has no version folder (1/, 2/, …)"
                : $"repository model '{name}': its version policy serves none of the versions on disk ({string.Join(", ", onDisk.Order())})");
        }
        var named = TritonBackend.Named(config, source);
        var prepared = new List<(Model New, Model? Old)>();
        var kept = new List<Model>();
        try
        {
            foreach (var version in served)
            {
                var old = current.FirstOrDefault(m => m.ServedVersion == version.ToString());
                if (old is { State: ModelState.Loaded } && unchanged?.Invoke(version) == true)
                {
                    kept.Add(old);
                    continue;
                }
                prepared.Add((PrepareVersion(state, name, Path.Combine(folder, version.ToString()), version, named, config, source, old), old));
            }
        }
        catch
        {
            foreach (var (m, _) in prepared) state.Core.Discard(m);
            throw;
        }
        for (int i = 0; i < prepared.Count; i++)
        {
            try { ModelLoader.Publish(state, prepared[i].New, prepared[i].Old); }
            catch
            {
                for (int k = i + 1; k < prepared.Count; k++) state.Core.Discard(prepared[k].New); // never published: let go
                throw;
            }
        }
        var serving = prepared.Select(p => p.New).Concat(kept).OrderByDescending(m => m.ServedVersion, ModelVersions.Order.Instance).ToList();
        foreach (var stale in current.Where(m => prepared.All(p => p.Old != m) && !kept.Contains(m)))
        {
            state.Core.Retire(stale, serving[0]);
            state.Log.Admin($"model '{name}' version {stale.ServedVersion} unloaded: its version policy no longer serves it");
        }
        return serving;
    }

    private static Model PrepareVersion(ServerState state, string name, string folder, long version, TritonBackend? named, TritonModelConfig config, string source, Model? replacing)
    {
        if (named == TritonBackend.Python) TritonPython.Check(config, source); // before any file is looked for
        var file = config.DefaultModelFilename ?? named?.DefaultFile
            ?? Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal)
                .FirstOrDefault(f => TritonBackend.ForFile(f!) is not null)
            ?? throw new MlosException(SmiStatus.NotFound, $"repository model '{name}' version {version} holds no model file (.onnx, .pt) and {source} names no platform or backend");
        if (file.Length == 0 || file.Contains('/') || file is "." or "..")
            throw new MlosException(SmiStatus.InvalidParam, $"{source}: default_model_filename must name a file in the version folder, not \"{file}\"");
        var path = Path.Combine(folder, file);
        if (!File.Exists(path))
            throw new MlosException(SmiStatus.NotFound, $"repository model '{name}' version {version} has no {file}");
        var backend = named ?? TritonBackend.ForFile(file)
            ?? throw new MlosException(SmiStatus.InvalidParam, $"{source}: no backend serves '{file}'; name a platform or backend");
        if (backend == TritonBackend.Python) TritonPython.EnsureBridge(state);
        var (pluginConfig, _) = backend.PluginConfig(config, Device(config), name);
        var options = new LoadOptions(Config: pluginConfig, Batching: Batching(config), Version: version.ToString(),
            Instances: Instances(config), MaxRows: config.MaxBatchSize ?? 0,
            OptionalInputs: config.Inputs.Where(t => t.Optional).Select(t => t.Name).ToList(),
            // The config's dims are the rule (Triton's): they fix what the model leaves free.
            Shapes: config.Inputs.Concat(config.Outputs).Where(t => t is { Reshape: null, Dims: not null })
                .Select(t => (t.Name, config.MaxBatchSize is > 0 ? [-1, .. t.Dims!] : t.Dims!)).ToList(),
            Reshape: config.Inputs.Concat(config.Outputs).Where(t => t is { Reshape: not null, Dims: not null }).Select(t => (t.Name, t.Dims!, t.Reshape!)).ToList(),
            Check: model =>
            {
                CheckIo(model, config, source);
                TritonWarmup.Run(state.Core, model, config, Path.GetDirectoryName(folder)!);
            });
        return ModelLoader.Prepare(state, name, backend.PluginId, path, options, replacing);
    }

    /// <summary>
    /// The batching options for a config: max_batch_size 0 is off; above 1, or with
    /// dynamic_batching, the batcher batches up to it (the ONNX Runtime backend turns dynamic
    /// batching on for max_batch_size > 1 when no scheduler is named); left out, our default rule.
    /// </summary>
    public static string? Batching(TritonModelConfig c)
    {
        int delay = c.DynamicBatching?.MaxQueueDelayMicroseconds ?? 0;
        var preferred = c.DynamicBatching is { PreferredBatchSizes.Length: > 0 } d ? $",\"preferred_batch_sizes\":[{string.Join(",", d.PreferredBatchSizes)}]" : "";
        // A config that asks for batching gets Triton's: requests merge whatever their size.
        return c.MaxBatchSize switch
        {
            null when c.DynamicBatching is null => null,
            null => $"{{\"max_batch_size\":{Core.Batching.BatchingOptions.DefaultMaxBatchSize},\"max_queue_delay_us\":{delay},\"max_merge_bytes\":0{preferred}}}",
            0 => "false",
            1 when c.DynamicBatching is null => "false",
            var max => $"{{\"max_batch_size\":{max},\"max_queue_delay_us\":{delay},\"max_merge_bytes\":0{preferred}}}",
        };
    }

    /// <summary>
    /// Instances the groups ask for: each group's count, per GPU it lists (Triton's rule); at
    /// least one, at most the core's limit.
    /// </summary>
    public static int Instances(TritonModelConfig c)
    {
        long n = c.InstanceGroups.Sum(g => (long)g.Count * Math.Max(1, g.Gpus.Length));
        if (n > Core.ModelOptions.MaxInstances)
            throw new TextFormatException($"config.pbtxt: the instance groups ask for {n} instances; at most {Core.ModelOptions.MaxInstances} are served");
        return (int)Math.Max(1, n);
    }

    /// <summary>The device the instance groups ask for: a GPU group's first GPU, CPU when every group is CPU, else the plugin's choice.</summary>
    private static int Device(TritonModelConfig c)
    {
        if (c.InstanceGroups.FirstOrDefault(g => g.Kind == InstanceKind.Gpu) is { } gpu) return gpu.Gpus.Length > 0 ? gpu.Gpus[0] : 0;
        return c.InstanceGroups.Count > 0 && c.InstanceGroups.All(g => g.Kind == InstanceKind.Cpu) ? TritonBackend.CpuOnly : TritonBackend.NoDevice;
    }

    /// <summary>
    /// What the config declares against what the loaded model has: every declared tensor exists,
    /// with the declared dtype and a shape that agrees (with max_batch_size > 0 the model's first
    /// dimension must be free); a config that lists inputs lists every one the model needs.
    /// </summary>
    public static void CheckIo(Model model, TritonModelConfig c, string source)
    {
        var d = ModelDescription.Of(model, withInfo: false);
        if (d.Inputs is null || d.Outputs is null) return; // a plugin that gives no specs checks requests itself
        Check(d.Inputs, c.Inputs, "input");
        Check(d.Outputs, c.Outputs, "output");
        if (c.Inputs.Count > 0)
            foreach (var missing in d.Inputs.Where(i => c.Inputs.All(t => t.Name != i.Name)))
                throw Mismatch($"lists the inputs {string.Join(", ", c.Inputs.Select(t => t.Name))} but the model also needs '{missing.Name}'");
        if (c.MaxBatchSize is > 0)
            foreach (var t in d.Inputs.Concat(d.Outputs))
                if (t.Shape.Length > 0 && t.Shape[0] >= 0)
                    throw Mismatch($"sets max_batch_size {c.MaxBatchSize}, but the model's '{t.Name}' has a fixed first dimension ({t.Shape[0]}) where the batch goes");

        void Check(TensorDescription[] actual, IReadOnlyList<TensorConfig> declared, string kind)
        {
            foreach (var t in declared)
            {
                var m = actual.FirstOrDefault(a => a.Name == t.Name)
                    ?? throw Mismatch($"declares {kind} '{t.Name}', which the model does not have (its {kind}s: {string.Join(", ", actual.Select(a => a.Name))})");
                if (t.Dtype != SmiDtype.Invalid && m.Dtype != SmiDtype.Invalid && t.Dtype != m.Dtype)
                    throw Mismatch($"declares {kind} '{t.Name}' as {TritonModelConfig.DataTypeName(t.Dtype)}; the model's is {TritonModelConfig.DataTypeName(m.Dtype)}");
                if (t.Dims is null || m.Shape.Length == 0) continue; // a reshaped tensor's shape here is already the client's (dims)
                long[] full = c.MaxBatchSize is > 0 ? [-1, .. t.Dims] : t.Dims;
                bool agrees = full.Length == m.Shape.Length && full.Zip(m.Shape).All(p => p.First < 0 || p.Second < 0 || p.First == p.Second);
                if (!agrees)
                    throw Mismatch($"declares {kind} '{t.Name}' as [{string.Join(",", full)}]{(c.MaxBatchSize is > 0 ? " (with the batch dimension)" : "")}; the model's is [{string.Join(",", m.Shape)}]");
            }
        }

        MlosException Mismatch(string what) => new(SmiStatus.InvalidParam, $"{source} {what}");
    }
}
