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
    /// <summary>Registers, loads and publishes; see <see cref="Prepare"/>.</summary>
    public static Model RegisterAndLoad(ServerState state, string? id, string pluginId, string path, LoadOptions options, Model? replacing = null)
    {
        var model = Prepare(state, id, pluginId, path, options, replacing);
        Publish(state, model, replacing);
        return model;
    }

    /// <summary>A model registered, loaded and checked, not yet reachable: <see cref="Publish"/> it or discard it.</summary>
    /// <param name="replacing">The model (same id and version) it is to take the place of; that one serves until then.</param>
    public static Model Prepare(ServerState state, string? id, string pluginId, string path, LoadOptions options, Model? replacing)
    {
        state.CheckModelConfig(options.Config);
        var model = state.Core.PrepareModel(id, pluginId, path, options.Json(), replacing);
        try
        {
            state.Core.LoadModel(model);
            options.Check?.Invoke(model);
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

    /// <summary>A value given as JSON text (a repository config.json's, or a string holding JSON): invalid JSON is the client's mistake.</summary>
    internal static void RawJson(Utf8JsonWriter w, string name, string json)
    {
        try { w.WriteRawValue(json); }
        catch (JsonException e) { throw new MlosException(SmiStatus.InvalidParam, $"\"{name}\" is not valid JSON: {e.Message}"); }
    }
}

/// <summary>How a model is registered: the core's model options (see Mlos.Core.ModelOptions) and a check to run once loaded.</summary>
/// <param name="Batching">JSON of <c>{"max_batch_size","max_queue_delay_us",…}</c>, true or false, or null for the default rule.</param>
/// <param name="Version">The version it is registered as (null: the model's only one).</param>
/// <param name="Instances">Independent instances (sessions of its own each).</param>
/// <param name="MaxRows">Most rows one request may carry (0: no limit).</param>
/// <param name="OptionalInputs">Inputs a request may leave out.</param>
/// <param name="Shapes">Declared whole shapes, which fix the dims the plugin leaves free.</param>
/// <param name="Reshape">Tensors clients see in another shape than the model: name, the client's dims, the model's (both without the batch dimension when MaxRows &gt; 0).</param>
/// <param name="Check">Runs once it is loaded; whatever it throws fails the load like the plugin's own errors.</param>
internal sealed record LoadOptions(string? Framework = null, string? Config = null, string? Batching = null, string? Version = null,
    int Instances = 1, int MaxRows = 0, IReadOnlyList<string>? OptionalInputs = null,
    IReadOnlyList<(string Name, long[] Dims)>? Shapes = null,
    IReadOnlyList<(string Name, long[] Dims, long[] ModelDims)>? Reshape = null, Action<Model>? Check = null,
    string? CallTimeout = null)
{
    public string Json()
    {
        var options = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(options))
        {
            w.WriteStartObject();
            if (Framework is not null) w.WriteString("framework", Framework);
            if (Version is not null) w.WriteString("version", Version);
            if (Instances != 1) w.WriteNumber("instances", Instances);
            if (MaxRows > 0) w.WriteNumber("max_rows", MaxRows);
            if (OptionalInputs is { Count: > 0 } optional)
            {
                w.WriteStartArray("optional_inputs");
                foreach (var name in optional) w.WriteStringValue(name);
                w.WriteEndArray();
            }
            if (Shapes is { Count: > 0 } shapes)
            {
                w.WriteStartObject("shapes");
                foreach (var (name, dims) in shapes) Dims(w, name, dims);
                w.WriteEndObject();
            }
            if (Reshape is { Count: > 0 } reshape)
            {
                w.WriteStartArray("reshape");
                foreach (var (name, dims, modelDims) in reshape)
                {
                    w.WriteStartObject();
                    w.WriteString("name", name);
                    Dims(w, "dims", dims);
                    Dims(w, "model_dims", modelDims);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            if (Config is not null)
            {
                w.WritePropertyName("config");
                if (Config.TrimStart().StartsWith('{')) ModelLoader.RawJson(w, "config", Config);
                else w.WriteStringValue(Config);
            }
            if (Batching is not null)
            {
                w.WritePropertyName("dynamic_batching");
                ModelLoader.RawJson(w, "dynamic_batching", Batching);
            }
            if (CallTimeout is not null) // checked by the core's model options, the one rule for it
            {
                w.WritePropertyName("call_timeout_ms");
                ModelLoader.RawJson(w, "call_timeout_ms", CallTimeout);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(options.WrittenSpan);
    }

    private static void Dims(Utf8JsonWriter w, string key, long[] dims)
    {
        w.WriteStartArray(key);
        foreach (var d in dims) w.WriteNumberValue(d);
        w.WriteEndArray();
    }
}
