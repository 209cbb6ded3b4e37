using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Server.Triton;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// A model repository: one folder per model, named as the model. A folder in Triton's layout
/// (<c>config.pbtxt</c>, numbered version folders) is read by <see cref="TritonModelFolder"/>;
/// otherwise the folder holds the model file and optionally <c>config.json</c>: <c>{"plugin_id","file","framework","config":{…},
/// "dynamic_batching":{"max_batch_size","max_queue_delay_us"}}</c> (<c>config</c> reaches the
/// plugin; without <c>plugin_id</c> the file type decides). Every
/// model is loaded at start; the v2 repository routes load and unload them.
/// </summary>
internal sealed class ModelRepository(ServerState state, string root)
{
    private static readonly string[] ModelFiles = [".onnx", ".pt", ".pth", ".torchscript"];

    public string Root { get; } = Path.GetFullPath(root);

    public IEnumerable<string> Names =>
        Directory.Exists(Root) ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).Order()! : [];

    /// <summary>Loads every model; a model that fails is reported and skipped.</summary>
    public void LoadAll()
    {
        foreach (var name in Names)
        {
            try { Load(name!); }
            catch (Exception e) when (e is MlosException or IOException or UnauthorizedAccessException)
            {
                state.Log.Warn($"repository model '{name}' not loaded: {e.Message}");
            }
        }
    }

    /// <summary>
    /// Registers the model from its folder if needed, then loads it. A folder in Triton's layout
    /// (config.pbtxt, version folders) is read again each time: loading a loaded model reloads it
    /// with what the folder holds now.
    /// </summary>
    public Model Load(string name)
    {
        var folder = Folder(name);
        var configPath = Path.Combine(folder, "config.json");
        bool ours = File.Exists(configPath);
        if (ours && File.Exists(Path.Combine(folder, TritonModelFolder.ConfigFile)))
            throw new MlosException(SmiStatus.InvalidParam, $"repository model '{name}' has both config.json and {TritonModelFolder.ConfigFile}: keep one of them");
        if (!ours && TritonModelFolder.Holds(folder)) return LoadTriton(name, folder);
        if (state.Core.Models.FirstOrDefault(m => m.Id == name) is { } known)
        {
            state.Core.LoadModel(known.Id);
            return known;
        }
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
        return MlosRoutes.RegisterAndLoad(state, name, pluginId ?? state.PluginFor(path), path, framework, config, batching);
    }

    private Model LoadTriton(string name, string folder)
    {
        TritonModelConfig config;
        try { config = TritonModelFolder.ReadConfig(name, folder); }
        catch (TextFormatException e) { throw new MlosException(SmiStatus.InvalidParam, e.Message); }
        if (state.Core.Models.Any(m => m.Id == name)) state.Core.UnregisterModel(name);
        state.ModelConfigs.TryRemove(name, out _);
        IReadOnlyList<Model> versions;
        try { versions = TritonModelFolder.Load(state, name, folder, config); }
        catch (TextFormatException e) { throw new MlosException(SmiStatus.InvalidParam, e.Message); }
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

    private string Folder(string name)
    {
        var folder = Path.GetFullPath(Path.Combine(Root, name));
        if (Path.GetDirectoryName(folder) != Root || !Directory.Exists(folder))
            throw new MlosException(SmiStatus.NotFound, $"no model '{name}' in the repository {Root}");
        return folder;
    }
}
