using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// How the server brings a model in, for every door (the register route, <c>--model</c>, both
/// repository layouts): registered with its plugin but out of reach, loaded, checked, and only
/// then published, in the place of the model it replaces when there is one. So nothing
/// half-made is ever served, a model that fails to load leaves nothing behind, and a reload
/// fails no request: the old model serves until the new one takes its place.
/// </summary>
internal static class ModelLoader
{
    /// <summary>Registers, loads and publishes; see <see cref="Prepare"/> for the parameters.</summary>
    public static Model RegisterAndLoad(ServerState state, string? id, string pluginId, string path, string? framework,
        string? config = null, string? batching = null, string? version = null, Action<Model>? check = null, Model? replacing = null)
    {
        var model = Prepare(state, id, pluginId, path, framework, config, batching, version, check, replacing, instances: 1, maxRows: 0);
        Publish(state, model, replacing);
        return model;
    }

    /// <summary>A model registered, loaded and checked, not yet reachable: <see cref="Publish"/> it or <see cref="Discard"/> it.</summary>
    /// <param name="batching">JSON of <c>{"max_batch_size","max_queue_delay_us",…}</c>, true or false (see Mlos.Core.Batching), or null for the default.</param>
    /// <param name="version">The version it is registered as (null: the model's only one).</param>
    /// <param name="check">Runs once it is loaded; whatever it throws fails the load like the plugin's own errors.</param>
    /// <param name="replacing">The model (same id and version) it is to take the place of; that one serves until then.</param>
    /// <param name="instances">Independent instances of the model (sessions of its own each).</param>
    /// <param name="maxRows">Most rows one request may carry (0: no limit).</param>
    public static Model Prepare(ServerState state, string? id, string pluginId, string path, string? framework,
        string? config, string? batching, string? version, Action<Model>? check, Model? replacing, int instances, int maxRows)
    {
        state.CheckModelConfig(config);
        var model = state.Core.PrepareModel(id, pluginId, path, Options(framework, version, config, batching, instances, maxRows), replacing);
        try
        {
            state.Core.LoadModel(model);
            check?.Invoke(model);
        }
        catch
        {
            state.Core.Discard(model);
            throw;
        }
        return model;
    }

    /// <summary>Makes a prepared model reachable; if that fails, it is discarded and the failure thrown.</summary>
    public static void Publish(ServerState state, Model model, Model? replacing)
    {
        try { state.Core.Publish(model, replacing); }
        catch (MlosException e) when (state.Core.Models.Contains(model))
        {
            // Published; only the replaced model's calls outlasted the unload timeout.
            state.Log.Warn($"model '{model.Id}' version {model.ServedVersion} replaced, but the old one is still busy: {e.Message}");
        }
        catch
        {
            state.Core.Discard(model);
            throw;
        }
        state.Log.Admin($"model '{model.Id}'{(model.Version is null ? "" : $" version {model.Version}")} {(replacing is null ? "registered and loaded" : "reloaded")} (plugin '{model.Plugin.Id}', {model.Path}{(model.Instances > 1 ? $", {model.Instances} instances" : "")})");
    }

    /// <summary>The core's model options JSON (see Mlos.Core.ModelOptions).</summary>
    private static string Options(string? framework, string? version, string? config, string? batching, int instances, int maxRows)
    {
        var options = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(options))
        {
            w.WriteStartObject();
            if (framework is not null) w.WriteString("framework", framework);
            if (version is not null) w.WriteString("version", version);
            if (instances != 1) w.WriteNumber("instances", instances);
            if (maxRows > 0) w.WriteNumber("max_rows", maxRows);
            if (config is not null)
            {
                w.WritePropertyName("config");
                if (config.TrimStart().StartsWith('{')) RawJson(w, "config", config);
                else w.WriteStringValue(config);
            }
            if (batching is not null)
            {
                w.WritePropertyName("dynamic_batching");
                RawJson(w, "dynamic_batching", batching);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(options.WrittenSpan);
    }

    /// <summary>A value given as JSON text (a repository config.json's, or a string holding JSON): invalid JSON is the client's mistake.</summary>
    private static void RawJson(Utf8JsonWriter w, string name, string json)
    {
        try { w.WriteRawValue(json); }
        catch (JsonException e) { throw new MlosException(SmiStatus.InvalidParam, $"\"{name}\" is not valid JSON: {e.Message}"); }
    }
}
