using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Server.Triton;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// Model repositories (one or more folders): one folder per model, named as the model, in one
/// repository only. A folder in Triton's layout
/// (<c>config.pbtxt</c>, numbered version folders) is read by <see cref="TritonModelFolder"/>;
/// otherwise the folder holds the model file and optionally <c>config.json</c>: <c>{"plugin_id","file","framework","config":{…},
/// "dynamic_batching":{"max_batch_size","max_queue_delay_us"}}</c> (<c>config</c> reaches the
/// plugin; without <c>plugin_id</c> the file type decides). Every
/// model is loaded at start (<see cref="ModelControlMode"/> decides); the v2 repository routes load
/// and unload them in explicit mode, and <see cref="PollAsync"/> follows the folders in poll mode.
/// </summary>
internal sealed class ModelRepository(ServerState state, IReadOnlyList<string> roots)
{
    private static readonly string[] ModelFiles = [".onnx", ".pt", ".pth", ".torchscript"];

    public IReadOnlyList<string> Roots { get; } = roots.Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r))).Distinct().ToList();

    /// <summary>Every model folder's name, across the repositories, each once.</summary>
    public IEnumerable<string> Names =>
        Roots.Where(Directory.Exists).SelectMany(r => Directory.EnumerateDirectories(r).Select(Path.GetFileName)).Distinct().Order(StringComparer.Ordinal)!;

    /// <summary>The start-up load of the control mode: every model, or in explicit mode the --load-model ones.</summary>
    public void LoadAtStart()
    {
        var options = state.Options;
        if (options.ModelControl != ModelControlMode.Explicit)
        {
            LoadAll();
            return;
        }
        if (options.LoadModels.Contains("*")) LoadAll();
        else
            foreach (var name in options.LoadModels.Distinct()) TryLoad(name);
    }

    /// <summary>Loads every model; a model that fails is reported and skipped.</summary>
    public void LoadAll()
    {
        bool poll = state.Options.ModelControl == ModelControlMode.Poll;
        foreach (var name in Names)
        {
            // What the folder held as it was loaded: a change made before the first scan is one
            // that scan sees (seeding there instead would take it for what was loaded).
            if (poll) _seen[name] = Fingerprint(name);
            TryLoad(name);
        }
    }

    private bool TryLoad(string name, bool incremental = false)
    {
        try
        {
            Load(name, incremental);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever a folder holds, it fails its own model only: start-up and polling go on.
            state.Log.Warn($"repository model '{name}' not loaded: {e.Message}");
            return false;
        }
    }

    /// <summary>What each model folder held when it was last loaded or tried (poll mode).</summary>
    private readonly Dictionary<string, string> _seen = new(StringComparer.Ordinal);

    /// <summary>
    /// Poll mode: scans the folders every <see cref="ServerOptions.RepositoryPollSeconds"/>
    /// seconds until <paramref name="stop"/>, one scan at a time.
    /// </summary>
    public async Task PollAsync(CancellationToken stop)
    {
        var period = TimeSpan.FromSeconds(state.Options.RepositoryPollSeconds);
        try
        {
            while (true)
            {
                await Task.Delay(period, stop);
                try { Poll(); }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    state.Log.Warn($"repository scan failed: {e.Message}");
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// One scan: a new folder is loaded, a changed one reloaded (its versions and config as they
    /// are now; what served keeps serving until the new load has succeeded, and keeps serving if
    /// it fails), a removed one unloaded and forgotten. The changes it made.
    /// </summary>
    public int Poll()
    {
        int changes = 0;
        if (state.Core.UnregisterLeftovers() is > 0 and var left)
            state.Log.Warn($"{left} replaced model(s) still have calls running past the unload timeout; tried again next scan");
        var names = Names.ToHashSet(StringComparer.Ordinal);
        foreach (var gone in _seen.Keys.Where(n => !names.Contains(n)).ToList())
        {
            try
            {
                if (state.Core.Models.Any(m => m.Id == gone))
                {
                    state.Core.UnregisterModel(gone);
                    state.Log.Admin($"model '{gone}' unloaded: its repository folder is gone");
                    changes++;
                }
                _seen.Remove(gone); // done; a failure above is tried again next scan
                Forget(gone);
            }
            catch (MlosException e) { state.Log.Warn($"model '{gone}': its folder is gone, but it could not be unloaded yet: {e.Message}"); }
        }
        foreach (var name in names)
        {
            var print = Fingerprint(name);
            if (_seen.TryGetValue(name, out var before) && before == print) continue;
            _seen[name] = print; // a load that fails is not retried until the folder changes again
            if (TryLoad(name, incremental: true)) changes++;
        }
        return changes;
    }

    /// <summary>Every file under a model folder with its size and time of change: what a reload would read.</summary>
    private string Fingerprint(string name)
    {
        try { return Fingerprint(Folder(name), _ => true); }
        catch (MlosException e) { return "unreadable: " + e.Message; }
    }

    /// <summary>The files under <paramref name="folder"/> whose path (relative, from '/') <paramref name="include"/> takes, with their sizes and times of change, hashed.</summary>
    private static string Fingerprint(string folder, Func<string, bool> include)
    {
        var text = new System.Text.StringBuilder();
        try
        {
            // Filtered before the cap: a huge version folder must not push config.pbtxt out of the shared part.
            // Folders count too, empty ones included: a version folder emptied and then removed
            // (a recursive delete seen half done) changes the layout, not any file.
            foreach (var f in new DirectoryInfo(folder).EnumerateFileSystemInfos("*", SearchOption.AllDirectories)
                         .Where(f => include(f.FullName[folder.Length..])).OrderBy(f => f.FullName, StringComparer.Ordinal).Take(10_000))
                if (f is FileInfo file)
                    text.Append(f.FullName.AsSpan(folder.Length)).Append('|').Append(file.Length).Append('|').Append(f.LastWriteTimeUtc.Ticks).Append('\n');
                else text.Append(f.FullName.AsSpan(folder.Length)).Append("/\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { text.Append("unreadable: ").Append(e.Message); }
        // A change detector, not a seal: no cryptographic hash. SHA-256 would load OpenSSL, which
        // a minimal image lacks, and .NET ends the process when it cannot ("No usable version of libssl").
        return Convert.ToHexString(System.IO.Hashing.XxHash128.Hash(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// A Triton folder's parts as last loaded: everything but the version folders (config.pbtxt,
    /// warm-up files), and each version folder. A version is unchanged when both its own and the
    /// shared part are as they were.
    /// </summary>
    private sealed record TritonPrints(string Shared, Dictionary<long, string> Versions);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TritonPrints> _tritonPrints = new(StringComparer.Ordinal);

    private static TritonPrints PrintTriton(string folder)
    {
        var versions = TritonModelFolder.Versions(folder).ToDictionary(v => v, v => Fingerprint(Path.Combine(folder, v.ToString()), _ => true));
        // A version folder is "/<digits>", a path under it starts "/<digits>/".
        var shared = Fingerprint(folder, relative =>
        {
            int end = relative.IndexOf('/', 1);
            var first = end > 1 ? relative.AsSpan(1, end - 1) : relative.AsSpan(1);
            return !long.TryParse(first, System.Globalization.NumberStyles.None, null, out var v) || !versions.ContainsKey(v);
        });
        return new TritonPrints(shared, versions);
    }

    /// <summary>
    /// Registers the model from its folder if needed, then loads it. A folder in Triton's layout
    /// (config.pbtxt, version folders) is read again each time: loading a loaded model reloads it
    /// with what the folder holds now.
    /// </summary>
    /// <param name="incremental">Poll mode: a Triton version whose folder (and the model's config) did not change since it loaded keeps serving as it is.</param>
    public Model Load(string name, bool incremental = false) => LoadFolder(name, null, incremental);

    /// <summary>
    /// <see cref="Load"/> from a folder given by path (one ModelMesh placed), in either layout,
    /// or from the repository folder named <paramref name="name"/> when <paramref name="folder"/> is null.
    /// </summary>
    public Model LoadFolder(string name, string? folder, bool incremental = false)
    {
        // One load of a model at a time: two would prepare the same versions and one would lose.
        lock (_loading.For(name))
        {
            try { return LoadUnlocked(name, folder ?? Folder(name), incremental); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new MlosException(SmiStatus.NotFound, $"repository model '{name}' cannot be read: {e.Message}");
            }
        }
    }

    private readonly StripedLocks _loading = new();

    /// <summary>What this repository kept about a model that is gone (its Triton config and folder prints).</summary>
    public void Forget(string name)
    {
        state.ModelConfigs.TryRemove(name, out _);
        _tritonPrints.TryRemove(name, out _);
    }

    private Model LoadUnlocked(string name, string folder, bool incremental)
    {
        var configPath = Path.Combine(folder, "config.json");
        bool ours = File.Exists(configPath);
        if (ours && File.Exists(Path.Combine(folder, TritonModelFolder.ConfigFile)))
            throw new MlosException(SmiStatus.InvalidParam, $"repository model '{name}' has both config.json and {TritonModelFolder.ConfigFile}: keep one of them");
        // A folder whose versions are all gone is still Triton's when its model was (it unloads),
        // unless a model file lies in the folder itself: then it moved to our layout.
        if (!ours && (TritonModelFolder.Holds(folder)
                      || (state.Core.Models.Any(m => m.Id == name && m.Version is not null) && !ModelFileIn(folder))))
            return LoadTriton(name, folder, incremental);
        // The model it takes the place of: the unversioned one (version 1), or version 1 of a
        // folder that was in Triton's layout until now (its other versions are retired below).
        var known = state.Core.Models.FirstOrDefault(m => m.Id == name && m.ServedVersion == "1");
        string? pluginId = null, file = null, framework = null, config = null, batching = null;
        if (File.Exists(configPath))
        {
            try { (pluginId, file, framework, config, batching) = ReadConfig(configPath); }
            catch (Exception e) when (e is JsonException or InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                throw new MlosException(SmiStatus.InvalidParam, $"{configPath} cannot be read: {e.Message}");
            }
        }
        var path = file is not null ? Path.GetFullPath(Path.Combine(folder, file))
            : Directory.EnumerateFiles(folder).Where(f => ModelFiles.Contains(Path.GetExtension(f).ToLowerInvariant())).Order().FirstOrDefault()
              ?? throw new MlosException(SmiStatus.NotFound, $"repository model '{name}' has no model file ({string.Join(", ", ModelFiles)}) and no \"file\" in config.json");
        if (!path.StartsWith(folder + "/", StringComparison.Ordinal))
            throw new MlosException(SmiStatus.InvalidParam, $"repository model '{name}': file {file} is outside its folder");
        // Registered already (loaded or not): reloaded from what the folder holds now, the old model serving until then.
        var model = ModelLoader.RegisterAndLoad(state, name, pluginId ?? state.PluginFor(path), path, new LoadOptions(framework, config, batching), replacing: known);
        _ours.AddOrUpdate(model, this);
        foreach (var version in state.Core.Models.Where(m => m.Id == name && m != model).ToList())
        {
            state.Core.Retire(version, model);
            state.Log.Admin($"model '{name}' version {version.ServedVersion} unloaded: its folder is no longer in Triton's layout");
        }
        state.ModelConfigs.TryRemove(name, out _);
        _tritonPrints.TryRemove(name, out _);
        return model;
    }

    /// <summary>
    /// The models this repository registered: an unversioned one of them may give way to versions
    /// when its folder moves to Triton's layout; one registered by other means may not.
    /// </summary>
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Model, ModelRepository> _ours = new();

    private static bool ModelFileIn(string folder) =>
        Directory.EnumerateFiles(folder).Any(f => ModelFiles.Contains(Path.GetExtension(f).ToLowerInvariant()));

    private Model LoadTriton(string name, string folder, bool incremental)
    {
        // Read before the load: a change made while it runs is seen by the next scan.
        var prints = PrintTriton(folder);
        _tritonPrints.TryGetValue(name, out var before);
        Func<long, bool>? unchanged = incremental && before is not null && before.Shared == prints.Shared
            ? version => before.Versions.TryGetValue(version, out var was) && prints.Versions.TryGetValue(version, out var now) && was == now
            : null;
        TritonModelConfig config;
        try { config = TritonModelFolder.ReadConfig(name, folder); }
        catch (TextFormatException e) { throw new MlosException(SmiStatus.InvalidParam, e.Message); }
        // An unversioned model of ours (the folder's config.json layout until now) is served as
        // version 1 and gives way like any version; one registered by other means is not ours to replace.
        if (state.Core.Models.Any(m => m.Id == name && m.Version is null && !_ours.TryGetValue(m, out _)))
            throw new MlosException(SmiStatus.AlreadyExists, $"a model '{name}' that is not from this repository is registered: unregister it first");
        IReadOnlyList<Model> versions;
        try { versions = TritonModelFolder.Load(state, name, folder, config, unchanged); }
        catch (TextFormatException e) { throw new MlosException(SmiStatus.InvalidParam, e.Message); }
        foreach (var v in versions) _ours.AddOrUpdate(v, this);
        _tritonPrints[name] = prints;
        state.ModelConfigs[name] = config;
        var ignored = config.Ignored.Concat(TritonBackend.Named(config, "")?.PluginConfig(config, TritonBackend.NoDevice).Ignored ?? []).ToList();
        if (ignored.Count > 0)
            state.Log.Warn($"model '{name}': {TritonModelFolder.ConfigFile} fields not acted on (see README, Triton model repositories): {string.Join(", ", ignored)}");
        return versions[0];
    }

    /// <summary>A model folder's config.json: a JSON object of the keys below, each a string (config and dynamic_batching may be objects).</summary>
    private static (string?, string?, string?, string?, string?) ReadConfig(string configPath)
    {
        string? pluginId = null, file = null, framework = null, config = null, batching = null;
        using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new MlosException(SmiStatus.InvalidParam, $"{configPath} must be a JSON object");
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            switch (p.Name)
            {
                case "plugin_id": pluginId = p.Value.GetString(); break;
                case "file": file = p.Value.GetString(); break;
                case "framework": framework = p.Value.GetString(); break;
                case "config": config = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText(); break;
                case "dynamic_batching": batching = p.Value.GetRawText(); break;
                default: throw new MlosException(SmiStatus.InvalidParam, $"{configPath}: unknown key '{p.Name}' (plugin_id, file, framework, config, dynamic_batching)");
            }
        }
        return (pluginId, file, framework, config, batching);
    }

    /// <summary>The folder of model <paramref name="name"/>: in exactly one of the repositories.</summary>
    private string Folder(string name)
    {
        var found = Roots.Select(root => (Root: root, Folder: Path.GetFullPath(Path.Combine(root, name))))
            .Where(r => Path.GetDirectoryName(r.Folder) == r.Root && Directory.Exists(r.Folder)).Select(r => r.Folder).ToList();
        return found.Count switch
        {
            0 => throw new MlosException(SmiStatus.NotFound, $"no model '{name}' in the repository {string.Join(" or ", Roots)}"),
            1 => found[0],
            _ => throw new MlosException(SmiStatus.InvalidParam, $"model '{name}' is in more than one repository ({string.Join(", ", found)}): a name may be in one only"),
        };
    }
}
